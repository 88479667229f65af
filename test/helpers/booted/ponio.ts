// PonIO pieces for the booted tier: the built release copied into a container, hosts added on a
// panel, and the agent's service state read through the container's own systemd.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { run } from '../../../bench/lib.ts';
import { ROOT } from '../agent-process.ts';
import type { Container } from './container.ts';

/** Where a container gets the release (not /tmp: nspawn mounts a tmpfs there). */
export const DIST_IN = '/root/ponio-dist';

const BUILD_CACHE = process.env.PONIO_TEST_BOOT_DIR ?? '/var/tmp';

let built: Promise<string> | undefined;

/** What a build is made from: the sources, the deploy files and the locked dependencies. */
const BUILD_INPUTS = [
  'agent',
  'server',
  'shared',
  'views',
  'public',
  'deploy',
  'scripts',
  'package-lock.json',
];

function sourceHash(): string {
  const h = createHash('sha256');
  const add = (p: string): void => {
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) add(path.join(p, e));
    else h.update(`${path.relative(ROOT, p)}\0`).update(readFileSync(p));
  };
  for (const i of BUILD_INPUTS) add(path.join(ROOT, i));
  return h.digest('hex').slice(0, 16);
}

/**
 * `npm run build` (agent, panel, .deb files), shared by the tier's test files: kept in
 * /var/tmp/ponio-booted-dist-<hash of the sources> (built in a temp dir and renamed; builds of
 * other sources are removed), so the files of one `npm test` run build once.
 */
export function buildRelease(): Promise<string> {
  built ??= (async () => {
    const key = sourceHash();
    const dir = path.join(BUILD_CACHE, `ponio-booted-dist-${key}`);
    if (existsSync(path.join(dir, 'BUILD.json'))) return dir;
    const tmp = `${dir}.tmp-${process.pid}`;
    try {
      await run(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--out', tmp], {
        timeoutMs: 300_000,
      });
      try {
        renameSync(tmp, dir);
      } catch (e) {
        if (!existsSync(path.join(dir, 'BUILD.json'))) throw e;
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    for (const e of readdirSync(BUILD_CACHE))
      if (/^ponio-booted-dist-[0-9a-f]{16}$/.test(e) && e !== path.basename(dir))
        rmSync(path.join(BUILD_CACHE, e), { recursive: true, force: true });
    return dir;
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

/**
 * Makes and installs (dpkg -i) a package that tells dpkg Node.js is there: the containers run the
 * host's Node.js, bind-mounted at /usr/bin/node, not a Debian package, while ponio-agent and
 * ponio-panel depend on `nodejs (>= 20)` (what an admin does with equivs for a nodejs.org
 * install). It carries no files.
 */
export async function provideNodejs(c: Container): Promise<void> {
  const stage = path.join(c.root, 'root/ponio-test-node');
  mkdirSync(path.join(stage, 'DEBIAN'), { recursive: true });
  writeFileSync(
    path.join(stage, 'DEBIAN/control'),
    [
      'Package: ponio-test-node',
      'Version: 1.0',
      'Architecture: all',
      'Maintainer: PonIO tests <tests@ponio.invalid>',
      `Provides: nodejs (= ${process.versions.node})`,
      "Description: the test host's Node.js, bind-mounted at /usr/bin/node",
      '',
    ].join('\n'),
  );
  await c.ok('dpkg-deb', [
    '--root-owner-group',
    '--build',
    '/root/ponio-test-node',
    '/root/ponio-test-node.deb',
  ]);
  await c.ok('dpkg', ['-i', '/root/ponio-test-node.deb']);
  rmSync(stage, { recursive: true, force: true });
}

/** Paths that change on a running system whatever PonIO does (logs, apt/dpkg bookkeeping). */
const CHURN = [
  /^\/var\/log\//,
  /^\/var\/lib\/(apt|dpkg)\//,
  /^\/var\/cache\//,
  /^\/var\/lib\/systemd\/(timers|catalog|coredump|random-seed)/,
  /^\/root\/ponio-/,
  /^\/var\/tmp\//,
  /^\/var\/lib\/mysql\//,
];

/** Every path on the container's root file system (one mount: not /proc, /run, /tmp, …). */
export async function fileList(c: Container): Promise<string[]> {
  const out = await c.ok('find', ['/', '-xdev'], { timeoutMs: 120_000 });
  return out
    .split('\n')
    .filter((p) => p && !CHURN.some((r) => r.test(p)))
    .sort();
}

/** What `after` has that `before` has not, and the reverse. */
export function diffLists(before: string[], after: string[]): { added: string[]; removed: string[] } {
  const b = new Set(before);
  const a = new Set(after);
  return { added: after.filter((p) => !b.has(p)), removed: before.filter((p) => !a.has(p)) };
}
