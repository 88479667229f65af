import path from 'node:path';
import { z } from 'zod';
import { readIfExists } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';

/**
 * Fault injection for the system tests, honoured in sandbox mode only (a production host never
 * reads this file): `<stateDir>/websites-test-hooks.json`.
 * - corruptVhost: domains whose vhost gets a directive Apache refuses (the checker fails);
 * - corruptPool: domains whose php-fpm pool gets an entry php-fpm refuses (`php-fpm -t` fails);
 * - failReload: domains whose reload (after create, enable, disable or delete) is reported failed;
 * - slowReloadMs: each reload waits this long first (a busy host; the dashboard's live progress).
 * (Kill points for crash tests are agent-wide: agent/journal/kill-point.ts.)
 */
const hooksSchema = z.strictObject({
  corruptVhost: z.array(z.string()).optional(),
  corruptPool: z.array(z.string()).optional(),
  failReload: z.array(z.string()).optional(),
  slowReloadMs: z.number().int().min(0).max(10_000).optional(),
});
export type TestHooks = z.infer<typeof hooksSchema>;

export const testHooksFile = (layout: HostLayout): string =>
  path.join(layout.stateDir, 'websites-test-hooks.json');

export async function readTestHooks(layout: HostLayout): Promise<TestHooks> {
  if (layout.mode !== 'sandbox') return {};
  const text = await readIfExists(testHooksFile(layout));
  if (text === null) return {};
  return hooksSchema.parse(JSON.parse(text));
}
