// Backups against real parts: a sandbox agent (in-process, agent/main.ts) with its private
// Apache, MariaDB and proftpd, and the real restic writing a real repository. A site with files
// and a database with rows are backed up, deleted (trash snapshots), restored, restored into new
// names beside the live originals; every check reads the real thing (HTTP from Apache, rows
// from MariaDB over its socket, the tree's digest, the FTP user file).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fsp, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, ReplyData, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { rootQuery } from '../helpers/mysql.ts';
import { fetchSite, hashTree, portOf } from '../helpers/websites.ts';
import { execFileSync } from 'node:child_process';
import { siteUserName } from '../../agent/modules/websites/php-pool.ts';

const HOST = 'bk1';
const SITE = 'shop.backup.test';
const DB = 'shopdb';
let pki: TestPki;
let agent: RunningAgent;
let m: ConnectionManager;
let sandbox: string;
let port: number;
const blob = randomBytes(300_000);

const socket = (): string => path.join(sandbox, 'run/mysqld.sock');
const www = (d: string): string => path.join(sandbox, 'var/www', d);
const repo = (): string => path.join(sandbox, 'var/lib/ponio-agent/backups/repository');
const userFile = (): string => path.join(sandbox, 'etc/proftpd/ftpd.passwd');

const resticEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: sandbox,
  RESTIC_REPOSITORY: repo(),
  RESTIC_PASSWORD_FILE: path.join(sandbox, 'etc/ponio-agent/backups.password'),
  RESTIC_CACHE_DIR: path.join(sandbox, 'restic-test-cache'),
});
const passwdHas = (user: string): boolean => {
  try {
    execFileSync('getent', ['passwd', user], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

const call = <E extends EventName>(event: E, params: RequestIn<E>) => m.call(HOST, event, params);
async function ok<E extends EventName>(event: E, params: RequestIn<E>): Promise<ReplyData<E>> {
  const r = await call(event, params);
  assert.ok(r.ok, `${event}: ${JSON.stringify(r)}`);
  return r.data;
}

/** The site's public files: paths, modes and bytes (logs left out: Apache appends to them). */
const siteDigest = (d: string): Promise<string> => hashTree(path.join(www(d), 'public_html'));
const rows = (db: string) =>
  rootQuery<{ id: number; name: string; price: string }>(
    socket(),
    `SELECT id, name, price FROM \`${db}\`.items ORDER BY id`,
  );
const databases = async (): Promise<string[]> =>
  (
    await rootQuery<{ n: string }>(
      socket(),
      'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA ORDER BY 1',
    )
  ).map((r) => r.n);

before(async () => {
  requireRoot('the backups system test');
  requireProgram('restic', 'restic');
  requireProgram('apache2', 'apache2');
  requireProgram('mariadbd', 'mariadb-server');
  requireProgram('mariadb-dump', 'mariadb-client');
  requireProgram('proftpd', 'proftpd-core');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-bk-'));
  const cfgFile = path.join(sandbox, 'agent.json');
  writeFileSync(cfgFile, JSON.stringify({ modules: { firewall: false } }));
  agent = await startAgent(
    loadAgentConfig(
      {
        config: cfgFile,
        listen: '127.0.0.1:0',
        cert: files.certFile,
        key: files.keyFile,
        ca: files.caFile,
        sandbox,
      },
      {},
    ),
    quietLogger,
  );
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  const st = await m.waitForState(HOST, 'online');
  for (const name of ['websites', 'mysql', 'ftp', 'backups'])
    assert.equal(st.hello?.modules.find((x) => x.name === name)?.available, true, `${name} available`);
  port = portOf((await ok('list websites', {})).url);

  // A site with files, an FTP account living in it, and a database with rows.
  await ok('create website', { domain: SITE });
  const docroot = path.join(www(SITE), 'public_html');
  await fsp.writeFile(path.join(docroot, 'index.html'), '<h1>the shop</h1>\n');
  await fsp.mkdir(path.join(docroot, 'img'));
  await fsp.writeFile(path.join(docroot, 'img/blob.bin'), blob);
  await ok('create ftp user', { username: 'shopftp', password: 'ftp-Passw0rd-9', home: docroot });
  await ok('create database', { name: DB });
  await rootQuery(
    socket(),
    `CREATE TABLE ${DB}.items (id INT PRIMARY KEY, name VARCHAR(50), price DECIMAL(8,2))`,
  );
  await rootQuery(
    socket(),
    `INSERT INTO ${DB}.items VALUES (1, 'apple', 1.25), (2, 'pear ''quoted''', 2.50), (3, 'ü-ñ', 9.99)`,
  );
});

after(async () => {
  await m?.close();
  await agent?.stop();
  // A PHP site's own system user outlives the sandbox if a test stopped half-way.
  if (passwdHas(siteUserName('php.backup.test'))) execFileSync('userdel', [siteUserName('php.backup.test')]);
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

let siteSnap = '';
let dbSnap = '';
let siteBefore = '';
let rowsBefore: unknown[] = [];

test('back up everything: one snapshot per site and database, listed with sizes; the password never leaves the host', async () => {
  siteBefore = await siteDigest(SITE);
  rowsBefore = await rows(DB);
  const r = await ok('back up', {});
  const site = r.snapshots.find((s) => s.kind === 'site' && s.name === SITE);
  const db = r.snapshots.find((s) => s.kind === 'database' && s.name === DB);
  assert.ok(site && db, JSON.stringify(r));
  siteSnap = site.snapshot;
  dbSnap = db.snapshot;
  const list = await ok('list backups', {});
  assert.equal(list.repository, repo());
  assert.ok(list.initialized);
  assert.equal(list.lastBackup?.ok, true);
  const s = list.snapshots.find((x) => x.shortId === siteSnap);
  assert.ok(
    s && s.sizeBytes !== null && s.sizeBytes > blob.length,
    `site snapshot size: ${JSON.stringify(s)}`,
  );
  assert.equal(s.reason, 'manual');
  const d = list.snapshots.find((x) => x.shortId === dbSnap);
  assert.ok(d && d.sizeBytes !== null && d.sizeBytes > 0);
  // Per site / per database.
  const onlyDb = await ok('list backups', { kind: 'database', name: DB });
  assert.deepEqual(
    onlyDb.snapshots.map((x) => x.shortId),
    [dbSnap],
  );
  const pw = (await fsp.readFile(path.join(sandbox, 'etc/ponio-agent/backups.password'), 'utf8')).trim();
  assert.equal((await fsp.stat(path.join(sandbox, 'etc/ponio-agent/backups.password'))).mode & 0o777, 0o600);
  assert.ok(!JSON.stringify(list).includes(pw), 'the password is not in the listing');
});

test('bad input is refused with a sentence and changes nothing', async () => {
  const count = (await ok('list backups', {})).snapshots.length;
  for (const snapshot of [
    'latest',
    '../../etc',
    '--help',
    'abc',
    'zzzzzzzz',
    `${siteSnap}\n`,
    `${siteSnap};rm -rf /`,
    'ａｂｃｄｅｆ１２',
  ]) {
    const r = await call('restore backup', { snapshot });
    assert.ok(
      !r.ok && r.error.code === 'invalid-argument',
      `${JSON.stringify(snapshot)}: ${JSON.stringify(r)}`,
    );
    assert.match(r.error.message, /snapshot id/);
  }
  for (const as of ['bad name', '../etc', 'x;y.com', "a'b.com", 'shop\u0000.test', 'a'.repeat(400)]) {
    const r = await call('restore backup', { snapshot: siteSnap, as });
    assert.ok(!r.ok && r.error.code === 'invalid-argument', `${JSON.stringify(as)}: ${JSON.stringify(r)}`);
  }
  const r1 = await call('restore backup', { snapshot: dbSnap, as: 'x`; DROP DATABASE mysql; --' });
  assert.ok(!r1.ok && r1.error.code === 'invalid-argument', JSON.stringify(r1));
  const r2 = await call('restore backup', { snapshot: '0123456789abcdef' });
  assert.ok(!r2.ok && r2.error.code === 'not-found', JSON.stringify(r2));
  for (const bad of [
    { keepDaily: -1 },
    { keepDaily: 1.5 },
    { keepWeekly: 100_000 },
    { trashDays: 0 },
    { everyHours: 0 },
  ]) {
    const r = await call('set backup settings', bad as never);
    assert.ok(!r.ok && r.error.code === 'invalid-argument', `${JSON.stringify(bad)}: ${JSON.stringify(r)}`);
  }
  const none = await call('set backup settings', { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 });
  assert.ok(!none.ok && none.error.code === 'invalid-argument' && /keeps nothing/.test(none.error.message));
  const into = await call('restore backup', { snapshot: siteSnap, as: SITE.replace('shop', 'other') });
  assert.ok(into.ok, 'a valid new name works'); // cleaned up below
  await ok('delete website', { domain: SITE.replace('shop', 'other'), removeFiles: true });
  assert.equal(await siteDigest(SITE), siteBefore);
  assert.ok((await ok('list backups', {})).snapshots.length >= count);
});

test('delete website and drop database put them in the trash first; restoring the trash brings back files, FTP account and rows', async () => {
  await ok('delete website', { domain: SITE, removeFiles: true });
  await ok('delete ftp user', { username: 'shopftp' });
  await ok('drop database', { name: DB });
  assert.equal((await get(SITE)).status === 200 && (await get(SITE)).body.includes('the shop'), false);
  assert.ok(!(await databases()).includes(DB));
  const list = await ok('list backups', {});
  const trashSite = list.snapshots.find((s) => s.reason === 'trash' && s.kind === 'site' && s.name === SITE);
  const trashDb = list.snapshots.find((s) => s.reason === 'trash' && s.kind === 'database' && s.name === DB);
  assert.ok(trashSite && trashDb, JSON.stringify(list.snapshots));
  const days = (Date.parse(trashSite.expiresAt ?? '') - Date.parse(trashSite.time)) / 86_400_000;
  assert.equal(Math.round(days), 14, 'kept 14 days by default');

  const rs = await ok('restore backup', { snapshot: trashSite.shortId });
  assert.deepEqual(
    { kind: rs.kind, name: rs.name, before: rs.before },
    { kind: 'site', name: SITE, before: null },
  );
  const rd = await ok('restore backup', { snapshot: trashDb.shortId });
  assert.equal(rd.name, DB);
  assert.equal(await siteDigest(SITE), siteBefore, 'files identical');
  assert.deepEqual(await rows(DB), rowsBefore, 'rows identical');
  const page = await get(SITE);
  assert.equal(page.status, 200);
  assert.match(page.body, /the shop/);
  assert.match(await fsp.readFile(userFile(), 'utf8'), /^shopftp:/m, 'the FTP account is back');
  assert.ok(!(await databases()).some((d) => d.startsWith('ponio_')), 'no staging database left');
  assert.deepEqual(
    (await fsp.readdir(path.join(sandbox, 'var/www'))).filter((n) => n.startsWith('.ponio')),
    [],
    'no staging directory left',
  );
});

const get = (host: string) => fetchSite(port, host);

test('restore to the same name replaces the current state, which is backed up first', async () => {
  await fsp.writeFile(path.join(www(SITE), 'public_html/index.html'), '<h1>defaced</h1>\n');
  await rootQuery(socket(), `DELETE FROM ${DB}.items WHERE id = 1`);
  const r = await ok('restore backup', { snapshot: siteSnap });
  assert.ok(r.before, 'the state it replaced is a snapshot');
  await ok('restore backup', { snapshot: dbSnap });
  assert.equal(await siteDigest(SITE), siteBefore);
  assert.match((await get(SITE)).body, /the shop/);
  assert.deepEqual(await rows(DB), rowsBefore);
  const list = await ok('list backups', {});
  assert.equal(list.snapshots.find((s) => s.shortId === r.before)?.reason, 'pre-restore');
  // The replaced state can itself be brought back.
  await ok('restore backup', { snapshot: r.before ?? '' });
  assert.match((await get(SITE)).body, /defaced/);
  await ok('restore backup', { snapshot: siteSnap });
});

test('restore into a new name while the original is live: both served, both databases readable', async () => {
  const copy = 'copy.backup.test';
  const r = await ok('restore backup', { snapshot: siteSnap, as: copy });
  assert.equal(r.name, copy);
  assert.equal(await siteDigest(copy), siteBefore);
  assert.match((await get(copy)).body, /the shop/);
  assert.match((await get(SITE)).body, /the shop/);
  const dup = await call('restore backup', { snapshot: siteSnap, as: copy });
  assert.ok(!dup.ok && dup.error.code === 'already-exists', JSON.stringify(dup));
  await ok('restore backup', { snapshot: dbSnap, as: 'shopdb_copy' });
  assert.deepEqual(await rows('shopdb_copy'), rowsBefore);
  assert.deepEqual(await rows(DB), rowsBefore, 'the original is untouched');
  const dupDb = await call('restore backup', { snapshot: dbSnap, as: DB });
  assert.ok(dupDb.ok, 'into its own name is a same-name restore');
});

test('a PHP site: its pool is in the snapshot; restored from the trash it runs PHP again as its own user', async () => {
  const PHP = 'php.backup.test';
  const made = await ok('create website', { domain: PHP, php: '8.2', phpSettings: { memoryLimitMb: 96 } });
  assert.ok(made.php?.poolFile);
  await fsp.writeFile(
    path.join(www(PHP), 'public_html/index.php'),
    '<?php echo "php=", 6 * 7, " mem=", ini_get("memory_limit");',
  );
  const user = siteUserName(PHP);
  execFileSync('chown', [`${user}:${user}`, path.join(www(PHP), 'public_html/index.php')]);
  assert.match((await get(PHP)).body, /^php=42 mem=96M/);
  const snap = (await ok('back up', { sites: [PHP] })).snapshots[0]?.snapshot ?? '';
  const listing = execFileSync('restic', ['ls', '--no-lock', snap], { env: resticEnv(), encoding: 'utf8' });
  assert.match(
    listing,
    new RegExp(`/extra-0-${path.basename(made.php.poolFile).replace(/\./g, '\\.')}$`, 'm'),
    'the pool file is in the snapshot',
  );
  await ok('delete website', { domain: PHP, removeFiles: true });
  assert.equal(passwdHas(user), false, 'deleting the site removed its user');
  const trash = (await ok('list backups', { kind: 'site', name: PHP })).snapshots.find(
    (s) => s.reason === 'trash',
  );
  assert.ok(trash);
  await ok('restore backup', { snapshot: trash.shortId });
  assert.match((await get(PHP)).body, /^php=42 mem=96M/, 'PHP runs again with its settings');
  const st = await fsp.stat(path.join(www(PHP), 'public_html/index.php'));
  assert.equal(
    st.uid,
    Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim()),
    "the files are the new site user's",
  );
  await ok('delete website', { domain: PHP, removeFiles: true });
});

test('retention and trash purge run through restic forget --prune', async () => {
  await ok('set backup settings', { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 });
  await ok('back up', { sites: [SITE] });
  const p = await ok('prune backups', {});
  assert.ok(p.removed >= 1, JSON.stringify(p));
  const list = await ok('list backups', { kind: 'site', name: SITE });
  const kept = list.snapshots.filter((s) => s.reason !== 'trash');
  assert.equal(kept.length, 1, 'one daily snapshot kept per site');
  assert.equal(list.lastPrune?.ok, true);
  const settings = await ok('set backup settings', { keepDaily: 7, trashDays: 30 });
  assert.equal(settings.trashDays, 30);
});

test('a corrupted repository gives a clear error and changes nothing; restic check reports it', async () => {
  const before = await siteDigest(SITE);
  const rowsNow = await rows(DB);
  const snap = (await ok('list backups', { kind: 'site', name: SITE })).snapshots.find(
    (s) => s.reason !== 'trash',
  );
  assert.ok(snap);
  // Damage every data pack in place (same size, other bytes).
  const dataDir = path.join(repo(), 'data');
  for (const sub of await fsp.readdir(dataDir))
    for (const f of await fsp.readdir(path.join(dataDir, sub))) {
      const p = path.join(dataDir, sub, f);
      const st = await fsp.stat(p);
      await fsp.chmod(p, 0o600);
      await fsp.writeFile(p, randomBytes(st.size));
    }
  await fsp.writeFile(path.join(www(SITE), 'public_html/index.html'), '<h1>current</h1>\n');
  const current = await siteDigest(SITE);
  const r = await call('restore backup', { snapshot: snap.shortId });
  assert.ok(!r.ok, JSON.stringify(r));
  assert.match(r.error.message, /restic|snapshot/i);
  assert.doesNotMatch(r.error.message, /at .*\.ts:\d+/, 'no stack trace');
  assert.equal(await siteDigest(SITE), current, 'the site is as it was');
  assert.match((await get(SITE)).body, /current/);
  const rd = await call('restore backup', { snapshot: dbSnap });
  assert.ok(!rd.ok, JSON.stringify(rd));
  assert.deepEqual(await rows(DB), rowsNow, 'the rows are as they were');
  assert.ok(!(await databases()).some((d) => d.startsWith('ponio_')));
  const c = await ok('check backups', {});
  assert.equal(c.ok, false);
  assert.ok(c.message.length > 0);
  assert.equal((await ok('list backups', {})).lastCheck?.ok, false);
  assert.notEqual(before, '');
});
