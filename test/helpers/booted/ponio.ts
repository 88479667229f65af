// PonIO pieces for the booted tier: the built release copied into a container, hosts added on a
// panel, and the agent's service state read through the container's own systemd.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import https from 'node:https';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
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
 * other sources unused for a day are removed), so the files of one `npm test` run build once.
 */
export function buildRelease(): Promise<string> {
  built ??= (async () => {
    const key = sourceHash();
    const dir = path.join(BUILD_CACHE, `ponio-booted-dist-${key}`);
    const tmp = `${dir}.tmp-${process.pid}`;
    if (!existsSync(path.join(dir, 'BUILD.json')))
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
    // Builds of other sources go once unused for a day: another run (another worktree, or CI
    // next to a developer) may be installing from its own build right now; removing every other
    // build at once deleted a concurrent run's release under it.
    const now = Date.now();
    utimesSync(dir, new Date(now), new Date(now));
    for (const e of readdirSync(BUILD_CACHE)) {
      if (!/^ponio-booted-dist-[0-9a-f]{16}$/.test(e) || e === path.basename(dir)) continue;
      const p = path.join(BUILD_CACHE, e);
      try {
        if (now - statSync(p).mtimeMs > 86_400_000) rmSync(p, { recursive: true, force: true });
      } catch {
        /* removed by another run */
      }
    }
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

/**
 * The unit's main PID once it runs its program (bounded wait): `active` comes right after the
 * fork of a Type=simple service, while the child is still setting up the sandbox as root.
 */
export async function runningPid(c: Container, unit: string, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  let pid = '';
  while (Date.now() < deadline) {
    pid = (await c.ok('systemctl', ['show', '-p', 'MainPID', '--value', unit])).trim();
    if (pid !== '0' && (await c.exec('cat', [`/proc/${pid}/comm`])).stdout.trim() === 'node') return pid;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${unit} in ${c.name} does not run node (main PID ${pid})`);
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
  // MariaDB's own files, made and rewritten by the running server whatever PonIO does (its
  // temporary tablespace while running, the buffer-pool dump at shutdown, DDL recovery and
  // transaction logs). Everything else in the datadir is compared: a database PonIO made and
  // did not drop is a directory there. Accounts and grants live inside mysql/'s tables, which
  // a file list cannot see: mysqlState() compares those.
  /^\/var\/lib\/mysql\/(ibtmp\d+|ib_buffer_pool|ddl_recovery(-backup)?\.log|tc\.log|aria_log\.\d+|ib_logfile\d+|undo\d+|[^/]+\.(err|pid))$/,
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

/** The MariaDB databases and accounts (user@host) of a container, sorted: what a file list cannot show. */
export async function mysqlState(c: Container): Promise<string[]> {
  const out = await c.ok('mariadb', [
    '-N',
    '-e',
    "SELECT CONCAT('database ', schema_name) FROM information_schema.schemata UNION ALL SELECT CONCAT('account ', user, '@', host) FROM mysql.global_priv",
  ]);
  return out.split('\n').filter(Boolean).sort();
}

export interface ApiReply<T> {
  status: number;
  body: T;
  text: string;
}

/**
 * The REST API of a panel installed in container `c` (HTTPS on its LAN address, port 8443),
 * called from the test process with `token`; the panel's certificate is checked against the
 * CA in its data dir (`dataDir/pki/ca.crt`, read through the container's root).
 */
export function containerPanelApi(
  c: Container,
  token: () => string,
  dataDir = '/var/lib/ponio-panel',
): <T = any>(method: string, p: string, body?: unknown) => Promise<ApiReply<T>> {
  return (method, p, body) =>
    new Promise((resolve, reject) => {
      const req = https.request(
        `https://${c.ip}:8443/api/v1${p}`,
        {
          method,
          ca: readFileSync(path.join(c.root, dataDir, 'pki/ca.crt')),
          timeout: 60_000,
          headers: {
            authorization: `Bearer ${token()}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* not JSON */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as never, text });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in 60 s`)));
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
}

/** Polls (bounded) until the API answers 200 on `p` (a service that was just (re)started). */
export async function waitApi(
  api: ReturnType<typeof containerPanelApi>,
  p: string,
  ms = 60_000,
): Promise<ApiReply<unknown>> {
  const deadline = Date.now() + ms;
  let last: ApiReply<unknown> = { status: 0, body: null, text: '' };
  while (Date.now() < deadline) {
    last = await api('GET', p).catch((e: unknown) => ({ status: 0, body: null, text: String(e) }));
    if (last.status === 200) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.fail(`GET ${p} did not answer 200 within ${ms} ms: ${last.status} ${last.text}`);
}

/** Polls (bounded) until the panel reports the host's link `online`. */
export async function waitHostOnline(
  api: ReturnType<typeof containerPanelApi>,
  host: string,
  ms = 60_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    const r = await api<{ data?: { connection?: { state?: string } | null } }>('GET', `/hosts/${host}`).catch(
      (e: unknown): ApiReply<{ data?: undefined }> => ({ status: 0, body: {}, text: String(e) }),
    );
    last = r.text;
    if (r.body.data?.connection?.state === 'online') return;
    await new Promise((res) => setTimeout(res, 500));
  }
  assert.fail(`host ${host} not online within ${ms} ms: ${last}`);
}

/** A panel CLI command as the service user `ponio` (so the database stays its own). */
export async function panelCli(c: Container, args: readonly string[], config: string): Promise<string> {
  return c.ok('runuser', ['-u', 'ponio', '--', 'ponio-panel', ...args, '--config', config]);
}
