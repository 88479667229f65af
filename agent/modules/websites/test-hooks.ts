import path from 'node:path';
import { z } from 'zod';
import { readIfExists } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';

/**
 * Fault injection for the system tests, honoured in sandbox mode only (a production host never
 * reads this file): `<stateDir>/websites-test-hooks.json`.
 * - corruptVhost: domains whose vhost gets a directive Apache refuses (the checker fails);
 * - failReload: domains whose reload (after create, enable, disable or delete) is reported failed;
 * - slowReloadMs: each reload waits this long first (a busy host; the dashboard's live progress);
 * - crashAt: the agent process SIGKILLs itself at that step of `create website` (only for tests
 *   that run the agent as a separate process).
 */
export const CRASH_POINTS = ['after-tree', 'after-vhost-write', 'after-enable'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const hooksSchema = z.strictObject({
  corruptVhost: z.array(z.string()).optional(),
  failReload: z.array(z.string()).optional(),
  slowReloadMs: z.number().int().min(0).max(10_000).optional(),
  crashAt: z.enum(CRASH_POINTS).optional(),
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

/** Dies at a crash point when the hooks ask for it (simulates `kill -9` of the agent). */
export function maybeCrash(hooks: TestHooks, at: CrashPoint): void {
  if (hooks.crashAt === at) process.kill(process.pid, 'SIGKILL');
}
