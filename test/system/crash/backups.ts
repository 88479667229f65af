// The backups crash cases (run by test/system/crash-backups.test.ts, harness test/helpers/crash.ts):
// a real agent with its private Apache and MariaDB and the real restic. After each kill and
// restart a restore is never half done (the site's files and vhost, the database's rows, no
// staging directory or database left), a killed backup leaves no snapshot of its own, and a
// settings change is in or not.
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { requireProgram } from '../../helpers/programs.ts';
import { rootQuery } from '../../helpers/mysql.ts';
import { hashTree } from '../../helpers/websites.ts';
import { crashCase, crashSuite, type CrashHost } from '../../helpers/crash.ts';

const SITE = 'kill.backup.test';
const COPY = 'killcopy.backup.test';
const DB = 'killbk';
let siteSnap = '';
let dbSnap = '';
const baseline = new Set<string>();

const socket = (h: CrashHost): string => h.sb('run/mysqld.sock');

/** restic as the test itself runs it (the agent's repository and password file). */
function restic(h: CrashHost, args: string[]): string {
  return execFileSync('restic', args, {
    env: {
      PATH: process.env.PATH,
      HOME: h.sandbox,
      RESTIC_REPOSITORY: h.state('backups/repository'),
      RESTIC_PASSWORD_FILE: h.sb('etc/ponio-agent/backups.password'),
      RESTIC_CACHE_DIR: h.sb('restic-test-cache'),
    },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
const snapshots = (h: CrashHost): { id: string; tags?: string[] }[] =>
  JSON.parse(restic(h, ['snapshots', '--json', '--no-lock']) || '[]') as { id: string; tags?: string[] }[];

/** What a site is on disk: its public files, its vhost and whether it is enabled. */
async function siteState(h: CrashHost, domain: string): Promise<unknown> {
  const vhost = await fsp
    .readFile(h.sb(`etc/apache2/sites-available/${domain}.conf`), 'utf8')
    .catch(() => null);
  const linked = await fsp.lstat(h.sb(`etc/apache2/sites-enabled/${domain}.conf`)).then(
    () => true,
    () => false,
  );
  return {
    files: await hashTree(h.sb(`var/www/${domain}/public_html`)),
    vhost: vhost?.length ?? null,
    linked,
  };
}

const rows = (h: CrashHost): Promise<unknown> =>
  rootQuery(socket(h), `SELECT id, v FROM ${DB}.t ORDER BY id`).catch((e: Error) => e.message);

/** The site and the database as the baseline snapshots hold them; the snapshots made once. */
async function ensureBaseline(h: CrashHost): Promise<void> {
  const sites = await h.ok('list websites', {});
  if (!sites.websites.some((w) => w.domain === SITE)) await h.ok('create website', { domain: SITE });
  await fsp.writeFile(h.sb(`var/www/${SITE}/public_html/index.html`), '<p>original</p>\n');
  await fsp.writeFile(h.sb(`var/www/${SITE}/public_html/data.bin`), Buffer.alloc(200_000, 7));
  const dbs = await h.ok('list databases', {});
  if (!dbs.databases.some((d) => d.name === DB)) await h.ok('create database', { name: DB });
  await rootQuery(socket(h), `CREATE TABLE IF NOT EXISTS ${DB}.t (id INT PRIMARY KEY, v TEXT)`);
  await rootQuery(socket(h), `DELETE FROM ${DB}.t WHERE id > 3`);
  await rootQuery(socket(h), `REPLACE INTO ${DB}.t VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
  if (siteSnap === '') {
    const r = await h.ok('back up', { sites: [SITE], databases: [DB] });
    siteSnap = r.snapshots.find((s) => s.kind === 'site')?.snapshot ?? '';
    dbSnap = r.snapshots.find((s) => s.kind === 'database')?.snapshot ?? '';
    for (const s of snapshots(h)) baseline.add(s.id);
  }
}

async function removeCopy(h: CrashHost): Promise<void> {
  const sites = await h.ok('list websites', {});
  if (sites.websites.some((w) => w.domain === COPY))
    await h.ok('delete website', { domain: COPY, removeFiles: true });
  await fsp.rm(h.sb(`var/www/${COPY}`), { recursive: true, force: true });
}

export default crashSuite({
  name: 'backups',
  requires() {
    requireProgram('restic', 'restic');
    requireProgram('apache2', 'apache2');
    requireProgram('mariadbd', 'mariadb-server');
    requireProgram('mariadb-dump', 'mariadb-client');
  },
  modules: () => ({ websites: {}, mysql: {}, backups: {} }),
  async started(h) {
    await ensureBaseline(h);
  },
  // Scratch a restore may leave (staging directories and databases).
  snapshot: (h) => scratch(h),
  cases: [
    crashCase({
      event: 'restore backup',
      label: 'a site, same name',
      params: () => ({ snapshot: siteSnap }),
      otherParams: () => ({ snapshot: dbSnap }),
      async setup(h) {
        await ensureBaseline(h);
        await removeCopy(h);
        await fsp.writeFile(h.sb(`var/www/${SITE}/public_html/index.html`), '<p>modified</p>\n');
      },
      snapshot: async (h) => ({ site: await siteState(h, SITE), scratch: await scratch(h) }),
    }),
    crashCase({
      event: 'restore backup',
      label: 'a database, same name',
      params: () => ({ snapshot: dbSnap }),
      otherParams: () => ({ snapshot: siteSnap }),
      async setup(h) {
        await ensureBaseline(h);
        await rootQuery(socket(h), `UPDATE ${DB}.t SET v = 'modified' WHERE id = 2`);
        await rootQuery(socket(h), `INSERT INTO ${DB}.t VALUES (4, 'new')`);
      },
      snapshot: async (h) => ({ rows: await rows(h), scratch: await scratch(h) }),
    }),
    crashCase({
      event: 'restore backup',
      label: 'a site into a new name',
      params: () => ({ snapshot: siteSnap, as: COPY }),
      otherParams: () => ({ snapshot: siteSnap, as: 'other.backup.test' }),
      async setup(h) {
        await ensureBaseline(h);
        await removeCopy(h);
      },
      snapshot: async (h) => ({
        copy: await siteState(h, COPY),
        site: await siteState(h, SITE),
        scratch: await scratch(h),
      }),
    }),
    crashCase({
      event: 'back up',
      params: () => ({ sites: [SITE], databases: [DB] }),
      otherParams: () => ({ sites: [SITE] }),
      async setup(h) {
        await ensureBaseline(h);
        restic(h, ['unlock']);
        const extra = snapshots(h)
          .filter((s) => !baseline.has(s.id) && s.tags?.includes('ponio') === true)
          .map((s) => s.id);
        if (extra.length > 0) restic(h, ['forget', ...extra]);
      },
      // This call's own snapshots (the baseline and trash ones left out), by what they are of.
      snapshot: async (h) => ({
        made: snapshots(h)
          .filter((s) => !baseline.has(s.id) && s.tags?.includes('ponio') === true)
          .map((s) => (s.tags ?? []).filter((t) => t !== 'ponio').join(','))
          .sort(),
        scratch: await scratch(h),
      }),
    }),
    crashCase({
      event: 'set backup settings',
      params: () => ({ keepDaily: 2, trashDays: 3 }),
      otherParams: () => ({ keepDaily: 5 }),
      async setup(h) {
        await h.ok('set backup settings', { keepDaily: 7, trashDays: 14 });
      },
      snapshot: async (h) =>
        (JSON.parse(await fsp.readFile(h.state('backups/state.json'), 'utf8')) as { settings: unknown })
          .settings,
    }),
    crashCase({
      event: 'check backups',
      async setup(h) {
        await ensureBaseline(h);
        const st = JSON.parse(await fsp.readFile(h.state('backups/state.json'), 'utf8')) as Record<
          string,
          unknown
        >;
        await fsp.writeFile(h.state('backups/state.json'), JSON.stringify({ ...st, lastCheck: null }), {
          mode: 0o600,
        });
      },
      params: () => ({}),
      snapshot: async (h) => ({
        checked:
          (
            JSON.parse(await fsp.readFile(h.state('backups/state.json'), 'utf8')) as {
              lastCheck: { ok: boolean } | null;
            }
          ).lastCheck?.ok ?? null,
      }),
    }),
    // Last: it prunes the baseline snapshots the cases above restore.
    crashCase({
      event: 'prune backups',
      async setup(h) {
        await h.ok('set backup settings', { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 });
        for (let i = 0; i < 3 && perGroup(h).some((n) => n < 2); i++)
          await h.ok('back up', { sites: [SITE], databases: [DB] });
      },
      params: () => ({}),
      snapshot: async (h) => ({ perGroup: perGroup(h), scratch: await scratch(h) }),
    }),
  ],
});

/** Retained snapshots of the site and of the database. */
const perGroup = (h: CrashHost): number[] => {
  const all = snapshots(h).filter((s) => s.tags?.includes('ponio') === true);
  return [`site=${SITE}`, `db=${DB}`].map((t) => all.filter((s) => s.tags?.includes(t) === true).length);
};

async function scratch(h: CrashHost): Promise<unknown> {
  return {
    dirs: (await fsp.readdir(h.sb('var/www'))).filter((n) => n.startsWith('.ponio')),
    databases: (
      await rootQuery<{ n: string }>(
        socket(h),
        "SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'ponio\\_%'",
      )
    ).map((r) => r.n),
  };
}
