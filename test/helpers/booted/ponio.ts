// PonIO pieces for the booted tier: the built release copied into a container, hosts added on a
// panel, and the agent's service state read through the container's own systemd.
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { run } from '../../../bench/lib.ts';
import { ROOT } from '../agent-process.ts';
import { tempDir } from '../tmp.ts';
import type { Container } from './container.ts';

/** Where a container gets the release (not /tmp: nspawn mounts a tmpfs there). */
export const DIST_IN = '/root/ponio-dist';

let built: Promise<string> | undefined;

/** `npm run build` (agent and panel) into a temp dir, once per test file; returns that dir. */
export function buildRelease(): Promise<string> {
  built ??= (async () => {
    const out = tempDir('ponio-booted-dist-');
    await run(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--out', out], { timeoutMs: 300_000 });
    return out;
  })();
  return built;
}

/** Copies dist/<part> to DIST_IN/<part> inside the container. */
export function copyRelease(c: Container, dist: string, part: 'agent' | 'panel' | 'deb'): string {
  const to = path.join(DIST_IN, part);
  cpSync(path.join(dist, part), path.join(c.root, to), { recursive: true });
  return to;
}

/** systemctl is-active of a unit inside. */
export async function unitState(c: Container, unit: string): Promise<string> {
  return (await c.exec('systemctl', ['is-active', unit])).stdout.trim();
}

/** Waits (bounded) until the unit is active; fails with its status and journal otherwise. */
export async function waitActive(c: Container, unit: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await unitState(c, unit)) === 'active') return;
    await new Promise((r) => setTimeout(r, 250));
  }
  const status = await c.exec('systemctl', ['status', '--no-pager', unit]);
  const journal = await c.exec('journalctl', ['-b', '--no-pager', '-n', '60', '-u', unit]);
  assert.fail(`${unit} is not active in ${c.name}:\n${status.stdout}\n${journal.stdout}`);
}

export interface AddedHost {
  token: string;
  caPin: string;
  command: string;
  installCommand: string | null;
}
