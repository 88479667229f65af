// Crash safety of every MySQL mutation: a real agent process is killed at every step of each
// mysql event in turn (test/helpers/kill-points.ts); after each restart the sandbox MariaDB is
// exactly as before the call or exactly as after it: its databases, the accounts (and which
// password each one's hash is) and the grants, read by the test over the server's own socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import { nativePasswordHash } from '../../agent/modules/mysql/sql.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { freePort } from '../helpers/enroll.ts';
import { rootQuery } from '../helpers/mysql.ts';
import { KillHarness, killAtEveryStep, tempFiles, type KillScenario } from '../helpers/kill-points.ts';

const HOST = 'crashsql';
const DB = 'killdb';
const USER = 'killuser';
const HOSTPART = 'localhost';
const PW1 = 'first-Passw0rd-1';
const PW2 = 'second-Passw0rd-2';
let pki: TestPki;
let sandbox: string;
let m: ConnectionManager;
let h: KillHarness;

const socket = (): string => path.join(sandbox, 'run/mysqld.sock');

async function snapshot(): Promise<unknown> {
  const dbs = await rootQuery<{ n: string }>(
    socket(),
    'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
    [DB],
  );
  const users = await rootQuery<{ Host: string; hash: string }>(
    socket(),
    'SELECT Host, authentication_string AS hash FROM mysql.user WHERE User = ? ORDER BY Host',
    [USER],
  );
  const grants = await rootQuery<Record<string, string>>(
    socket(),
    'SELECT * FROM mysql.db WHERE User = ? ORDER BY Db, Host',
    [USER],
  );
  const pw = (hash: string): string =>
    hash === nativePasswordHash(PW1) ? 'PW1' : hash === nativePasswordHash(PW2) ? 'PW2' : `? ${hash}`;
  return {
    databases: dbs.map((d) => d.n),
    users: users.map((u) => `${USER}@${u.Host} ${pw(u.hash)}`),
    grants: grants.map((g) =>
      Object.entries(g)
        .filter(([k, v]) => k === 'Db' || k === 'Host' || (k.endsWith('_priv') && v === 'Y'))
        .map(([k, v]) => (k.endsWith('_priv') ? k : `${k}=${v}`))
        .join(' '),
    ),
    temps: await tempFiles([
      path.join(sandbox, 'var/lib/ponio-agent'),
      path.join(sandbox, 'var/lib/ponio-agent/calls'),
    ]),
  };
}

/** The state before a call, through the agent: which of the database, the user (PW1) and its SELECT grant exist. */
async function ensure(want: { db: boolean; user: boolean; grant: boolean }): Promise<void> {
  const dbs = await h.ok('list databases', {});
  const users = await h.ok('list database users', {});
  const u = users.users.find((x) => x.user === USER && x.host === HOSTPART);
  const hash = (
    await rootQuery<{ hash: string }>(
      socket(),
      'SELECT authentication_string AS hash FROM mysql.user WHERE User = ? AND Host = ?',
      [USER, HOSTPART],
    )
  )[0]?.hash;
  // Dropping and creating (never the event under test, which is armed to die at its first call).
  if (
    u &&
    (!want.user ||
      hash !== nativePasswordHash(PW1) ||
      JSON.stringify(u.grants) !==
        JSON.stringify(want.grant ? [{ database: DB, privileges: ['SELECT'] }] : []))
  )
    await h.ok('drop database user', { user: USER, host: HOSTPART });
  const hasDb = dbs.databases.some((d) => d.name === DB);
  if (hasDb && !want.db) await h.ok('drop database', { name: DB });
  if (!hasDb && want.db) await h.ok('create database', { name: DB });
  const now = (await h.ok('list database users', {})).users.find(
    (x) => x.user === USER && x.host === HOSTPART,
  );
  if (want.user && !now) {
    await h.ok('create database user', { user: USER, host: HOSTPART, password: PW1 });
    if (want.grant)
      await h.ok('grant database', { user: USER, host: HOSTPART, database: DB, privileges: ['SELECT'] });
  }
}

const acct = { user: USER, host: HOSTPART };
const scenarios: KillScenario[] = (
  [
    ['create database', { name: DB }, { db: false, user: false, grant: false }],
    // Its grants are revoked before the drop: a multi-statement change.
    ['drop database', { name: DB }, { db: true, user: true, grant: true }],
    ['create database user', { ...acct, password: PW2 }, { db: false, user: false, grant: false }],
    ['set database password', { ...acct, password: PW2 }, { db: false, user: true, grant: false }],
    // Replaces SELECT by SELECT + INSERT: revoke, then grant.
    [
      'grant database',
      { ...acct, database: DB, privileges: ['SELECT', 'INSERT'] },
      { db: true, user: true, grant: true },
    ],
    ['revoke database', { ...acct, database: DB }, { db: true, user: true, grant: true }],
    ['drop database user', acct, { db: true, user: true, grant: true }],
  ] as const
).map(([event, params, want]) => ({ event, params: () => params, setup: () => ensure(want), snapshot }));

before(async () => {
  requireRoot('the MySQL crash test');
  requireProgram('mariadbd', 'mariadb-server');
  requireProgram('mariadb-install-db', 'mariadb-server');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-crashsql-'));
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(config, JSON.stringify({ modules: { websites: false, ftp: false, firewall: false } }));
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
  const pid = Number(await fsp.readFile(path.join(sandbox, 'run/mysqld.pid'), 'utf8').catch(() => ''));
  if (pid > 1) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

for (const s of scenarios) {
  test(`a kill at any step of "${s.event}" leaves it fully applied or fully absent`, async (t) => {
    const r = await killAtEveryStep(h, s);
    t.diagnostic(`${r.steps} kill points: ${r.outcomes.join(' ')}`);
    assert.ok(r.steps >= 2, `${s.event}: ${r.steps} kill points`);
  });
}
