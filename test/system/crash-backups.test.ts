// Crash safety of the backups module: a real agent process (private Apache and MariaDB, the real
// restic) is killed at every step of each backups mutation in turn (test/helpers/kill-points.ts);
// after each restart the host is exactly as before the call or exactly as after it — a restore
// is never half done (the site's files and vhost, the database's rows, no staging directory or
// database left), a killed backup leaves no snapshot of its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { freePort } from '../helpers/enroll.ts';
import { rootQuery } from '../helpers/mysql.ts';
import { hashTree } from '../helpers/websites.ts';
import { KillHarness, killAtEveryStep, tempFiles, type KillScenario } from '../helpers/kill-points.ts';

const HOST = 'crashbk';
const SITE = 'kill.backup.test';
const COPY = 'killcopy.backup.test';
const DB = 'killbk';
let pki: TestPki;
let sandbox: string;
let m: ConnectionManager;
let h: KillHarness;
let siteSnap = '';
let dbSnap = '';
const baseline = new Set<string>();

const socket = (): string => path.join(sandbox, 'run/mysqld.sock');
const www = (...p: string[]): string => path.join(sandbox, 'var/www', ...p);
const apache = (...p: string[]): string => path.join(sandbox, 'etc/apache2', ...p);
const state = (): string => path.join(sandbox, 'var/lib/ponio-agent/backups/state.json');

/** restic as the test itself runs it (the agent's repository and password file). */
function restic(args: string[]): string {
  return execFileSync('restic', args, {
    env: {
      PATH: process.env.PATH,
      HOME: sandbox,
      RESTIC_REPOSITORY: path.join(sandbox, 'var/lib/ponio-agent/backups/repository'),
      RESTIC_PASSWORD_FILE: path.join(sandbox, 'etc/ponio-agent/backups.password'),
      RESTIC_CACHE_DIR: path.join(sandbox, 'restic-test-cache'),
    },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
const snapshots = (): { id: string; tags?: string[] }[] =>
  JSON.parse(restic(['snapshots', '--json', '--no-lock']) || '[]') as { id: string; tags?: string[] }[];

/** What a site is on disk: its public files, its vhost and whether it is enabled; scratch left over. */
async function siteState(domain: string): Promise<unknown> {
  const vhost = await fsp.readFile(apache('sites-available', `${domain}.conf`), 'utf8').catch(() => null);
  const linked = await fsp.lstat(apache('sites-enabled', `${domain}.conf`)).then(
    () => true,
    () => false,
  );
  return {
    files: await hashTree(www(domain, 'public_html')),
    vhost: vhost === null ? null : vhost.length,
    linked,
  };
}

async function common(): Promise<unknown> {
  return {
    scratch: (await fsp.readdir(www())).filter((n) => n.startsWith('.ponio')),
    databases: (
      await rootQuery<{ n: string }>(
        socket(),
        "SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1",
      )
    ).map((r) => r.n),
    temps: await tempFiles([
      path.join(sandbox, 'var/lib/ponio-agent'),
      path.join(sandbox, 'var/lib/ponio-agent/calls'),
      path.join(sandbox, 'var/lib/ponio-agent/backups'),
      apache('sites-available'),
      apache('sites-enabled'),
    ]),
  };
}

const rows = async (): Promise<unknown> =>
  rootQuery(socket(), `SELECT id, v FROM ${DB}.t ORDER BY id`).catch((e: Error) => e.message);

/** The site and the database as the baseline snapshots hold them; the snapshots made once. */
async function ensureBaseline(): Promise<void> {
  const sites = await h.ok('list websites', {});
  if (!sites.websites.some((w) => w.domain === SITE)) await h.ok('create website', { domain: SITE });
  await fsp.writeFile(www(SITE, 'public_html/index.html'), '<p>original</p>\n');
  await fsp.writeFile(www(SITE, 'public_html/data.bin'), Buffer.alloc(200_000, 7));
  const dbs = await h.ok('list databases', {});
  if (!dbs.databases.some((d) => d.name === DB)) await h.ok('create database', { name: DB });
  await rootQuery(socket(), `CREATE TABLE IF NOT EXISTS ${DB}.t (id INT PRIMARY KEY, v TEXT)`);
  await rootQuery(socket(), `DELETE FROM ${DB}.t WHERE id > 3`);
  await rootQuery(socket(), `REPLACE INTO ${DB}.t VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
  if (siteSnap === '') {
    const r = await h.ok('back up', { sites: [SITE], databases: [DB] });
    siteSnap = r.snapshots.find((s) => s.kind === 'site')?.snapshot ?? '';
    dbSnap = r.snapshots.find((s) => s.kind === 'database')?.snapshot ?? '';
    for (const s of snapshots()) baseline.add(s.id);
  }
}

async function removeCopy(): Promise<void> {
  const sites = await h.ok('list websites', {});
  if (sites.websites.some((w) => w.domain === COPY))
    await h.ok('delete website', { domain: COPY, removeFiles: true });
  await fsp.rm(www(COPY), { recursive: true, force: true });
}

/** This run's own snapshots (the baseline and trash ones left out), by what they are of. */
const madeSnapshots = (): string[] =>
  snapshots()
    .filter((s) => !baseline.has(s.id) && s.tags?.includes('ponio') === true)
    .map((s) => (s.tags ?? []).filter((t) => t !== 'ponio').join(','))
    .sort();

const scenarios: KillScenario[] = [
  {
    event: 'restore backup',
    params: () => ({ snapshot: siteSnap }),
    async setup() {
      await ensureBaseline();
      await removeCopy();
      await fsp.writeFile(www(SITE, 'public_html/index.html'), '<p>modified</p>\n');
    },
    snapshot: async () => ({ site: await siteState(SITE), ...((await common()) as object) }),
  },
  {
    event: 'restore backup',
    params: () => ({ snapshot: dbSnap }),
    async setup() {
      await ensureBaseline();
      await rootQuery(socket(), `UPDATE ${DB}.t SET v = 'modified' WHERE id = 2`);
      await rootQuery(socket(), `INSERT INTO ${DB}.t VALUES (4, 'new')`);
    },
    snapshot: async () => ({ rows: await rows(), ...((await common()) as object) }),
  },
  {
    event: 'restore backup',
    params: () => ({ snapshot: siteSnap, as: COPY }),
    async setup() {
      await ensureBaseline();
      await removeCopy();
    },
    snapshot: async () => ({
      copy: await siteState(COPY),
      site: await siteState(SITE),
      ...((await common()) as object),
    }),
  },
  {
    event: 'back up',
    params: () => ({ sites: [SITE], databases: [DB] }),
    async setup() {
      await ensureBaseline();
      restic(['unlock']);
      const extra = snapshots()
        .filter((s) => !baseline.has(s.id) && s.tags?.includes('ponio') === true)
        .map((s) => s.id);
      if (extra.length > 0) restic(['forget', ...extra]);
    },
    snapshot: async () => ({ made: madeSnapshots(), ...((await common()) as object) }),
  },
  {
    event: 'set backup settings',
    params: () => ({ keepDaily: 2, trashDays: 3 }),
    async setup() {
      await h.ok('set backup settings', { keepDaily: 7, trashDays: 14 });
    },
    snapshot: async () => {
      const s = JSON.parse(await fsp.readFile(state(), 'utf8')) as { settings: unknown };
      return { settings: s.settings, ...((await common()) as object) };
    },
  },
];

before(async () => {
  requireRoot('the backups crash test');
  requireProgram('restic', 'restic');
  requireProgram('apache2', 'apache2');
  requireProgram('mariadbd', 'mariadb-server');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-crashbk-'));
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(config, JSON.stringify({ modules: { ftp: false, firewall: false } }));
  const agentPort = await freePort();
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agentPort });
  h = new KillHarness(m, HOST, [
    ...['--config', config, '--listen', `127.0.0.1:${agentPort}`, '--sandbox', sandbox],
    ...['--cert', files.certFile, '--key', files.keyFile, '--ca', files.caFile],
  ]);
});

after(async () => {
  await h?.stop();
  await m?.close();
  for (const pidFile of ['run/mysqld.pid', 'run/apache2.pid']) {
    const pid = Number(await fsp.readFile(path.join(sandbox, pidFile), 'utf8').catch(() => ''));
    if (pid > 1)
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
  }
  await new Promise((r) => setTimeout(r, 2000));
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

for (const [i, s] of scenarios.entries()) {
  test(`a kill at any step of "${s.event}" (case ${i + 1}) leaves it fully applied or fully absent`, async (t) => {
    const r = await killAtEveryStep(h, s);
    t.diagnostic(`${r.steps} kill points: ${r.outcomes.join(' ')}`);
    assert.ok(r.steps >= 2, `${s.event}: ${r.steps} kill points`);
    assert.ok(r.outcomes.includes('absent'), 'some kills were undone');
  });
}
