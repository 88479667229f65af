// The agent's own MariaDB admin account is never changed, dropped, re-granted or given a new
// password through any event, whatever its name. Against a real private MariaDB (a sandbox
// agent's): a non-root admin `ponio_admin` with a password is created there first, and the mysql
// module is configured as on a real host (`modules.mysql`: socket, user, passwordFile; sandbox
// mode always administers its private server as root by unix_socket, so the configured account
// is exercised through the host adapter), its events dispatched through the agent's real router.
// The sandbox's own admin (root) is checked the same way over the real panel → agent RPC path.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { createMysqlModule } from '../../agent/modules/mysql/index.ts';
import { exec } from '../../agent/os/exec.ts';
import { systemLayout } from '../../agent/os/layout.ts';
import { Router } from '../../agent/rpc/router.ts';
import type { AgentModule } from '../../agent/modules/types.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, Reply } from '../../shared/protocol/index.ts';
import { makeTestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { mysqlOnlyAgentConfig, rootQuery, tcpLogin } from '../helpers/mysql.ts';

const HOST = 'db-admin';
const ADMIN = 'ponio_admin';
const ADMIN_PW = 'admin-Secret-pass-1';
const meta = { peer: { address: '127.0.0.1', port: 1, localPort: 2 }, emit: () => undefined };

let agent: RunningAgent;
let manager: ConnectionManager;
let socketPath: string;
let port: number;
let router: Router;
let hostModule: AgentModule<'mysql'>;

const asRoot = <T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> =>
  rootQuery<T>(socketPath, sql, params);

/** Everything about these accounts the server holds: hashes, plugins, global and db privileges. */
async function accountState(user: string): Promise<string> {
  const rows = await asRoot<{ Host: string }>(
    'SELECT Host, authentication_string, plugin, Priv FROM mysql.global_priv JOIN mysql.user USING (Host, User) WHERE User = ? ORDER BY Host',
    [user],
  );
  const grants: unknown[] = [];
  for (const r of rows) grants.push(await asRoot(`SHOW GRANTS FOR ?@?`, [user, r.Host]));
  const db = await asRoot('SELECT * FROM mysql.db WHERE User = ? ORDER BY Db, Host', [user]);
  return JSON.stringify({ rows, grants, db });
}

const login = (user: string, password: string, database?: string): Promise<true | string> =>
  tcpLogin(port, user, password, database);

/** Every event that could change an account, aimed at `user@host`. */
const attacks = (user: string, host: string): [EventName, Record<string, unknown>][] => [
  ['set database password', { user, host, password: 'taken-over-pass-1' }],
  ['grant database', { user, host, database: 'appdb', privileges: 'read-only' }],
  ['grant database', { user, host, database: 'appdb', privileges: 'all' }],
  ['revoke database', { user, host, database: 'appdb' }],
  ['revoke database', { user, host, database: 'keepdb' }],
  ['drop database user', { user, host }],
  ['create database user', { user, host, password: 'taken-over-pass-1' }],
];

const dispatch = (event: EventName, params: Record<string, unknown>): Promise<Reply<unknown>> =>
  router.dispatch(event, params, meta);

before(async () => {
  requireRoot('the MySQL admin-account test');
  requireProgram('mariadbd', 'mariadb-server');
  requireProgram('mariadb-install-db', 'mariadb-server');
  const pki = await makeTestPki();
  const files = await pki.agent(HOST);
  const sandbox = tempDir('ponio-myadm-');
  agent = await startAgent(mysqlOnlyAgentConfig(sandbox, files), quietLogger);
  manager = testManager(pki);
  manager.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  const st = await manager.waitForState(HOST, 'online');
  assert.ok(st.hello?.modules.find((m) => m.name === 'mysql')?.available, 'sandbox MariaDB running');
  socketPath = path.join(sandbox, 'run/mysqld.sock');
  const cnf = readFileSync(path.join(sandbox, 'var/lib/mysql-sandbox/my.cnf'), 'utf8');
  port = Number(/^port=(\d+)$/m.exec(cnf)?.[1]);

  // A non-root admin, as a host without unix_socket root would configure it, on two hosts.
  for (const host of ['localhost', '127.0.0.1']) {
    await asRoot(`CREATE USER ?@? IDENTIFIED BY ?`, [ADMIN, host, ADMIN_PW]);
    await asRoot(`GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION`, [ADMIN, host]);
  }
  await asRoot('CREATE DATABASE appdb');
  await asRoot('CREATE DATABASE keepdb');
  // A database-level grant too, so revoke/drop database have something of the admin's to touch.
  await asRoot('GRANT SELECT ON keepdb.* TO ?@?', [ADMIN, 'localhost']);
  const pwFile = path.join(tempDir('ponio-myadm-pw-'), 'admin.pw');
  writeFileSync(pwFile, `${ADMIN_PW}\n`, { mode: 0o600 });

  hostModule = createMysqlModule({
    layout: systemLayout(),
    exec,
    logger: quietLogger,
    broadcast: () => undefined,
    agentPort: 7443,
    moduleSettings: { mysql: { socket: socketPath, user: ADMIN, passwordFile: pwFile } },
  });
  router = new Router(quietLogger);
  router.addModule(hostModule);
});

after(async () => {
  await hostModule?.stop?.();
  await manager?.close();
  await agent?.stop();
});

describe('the agent’s own MariaDB admin account is untouchable', () => {
  test('a configured non-root admin: the module works as that account and never lists it', async () => {
    const created = await dispatch('create database user', {
      user: 'app_user',
      host: '%',
      password: 'app-user-pass-1',
    });
    assert.ok(created.ok, JSON.stringify(created));
    const sessions = await asRoot<{ USER: string }>(
      'SELECT USER FROM information_schema.PROCESSLIST WHERE USER = ?',
      [ADMIN],
    );
    assert.ok(sessions.length > 0, `the module is logged in as ${ADMIN}`);
    const listed = await dispatch('list database users', {});
    assert.ok(listed.ok);
    const names = (listed.data as { users: { user: string }[] }).users.map((u) => u.user);
    assert.ok(names.includes('app_user'));
    assert.ok(!names.includes(ADMIN), `${ADMIN} is not listed: ${names.join(', ')}`);
  });

  test('a configured non-root admin cannot be changed, dropped, re-granted or get a new password', async () => {
    const before = await accountState(ADMIN);
    assert.match(before, /GRANT ALL PRIVILEGES ON \*\.\* TO `ponio_admin`@`localhost`/);
    for (const user of [ADMIN, 'PONIO_ADMIN', 'Ponio_Admin'])
      for (const host of ['localhost', '127.0.0.1', '%'])
        for (const [event, params] of attacks(user, host)) {
          const r = await dispatch(event, params);
          assert.equal(r.ok, false, `${event} ${JSON.stringify(params)} was accepted`);
          assert.equal(!r.ok && r.error.code, 'invalid-argument', `${event}: ${JSON.stringify(r)}`);
          assert.match(!r.ok ? r.error.message : '', /admin account/);
        }
    // Dropping a database revokes the grants on it, except the admin's.
    const dropped = await dispatch('drop database', { name: 'keepdb' });
    assert.ok(dropped.ok, JSON.stringify(dropped));
    assert.equal(await accountState(ADMIN), before, 'the admin account is byte-for-byte unchanged');
    assert.equal(await login(ADMIN, ADMIN_PW), true, 'its password still works');
    assert.equal(await login(ADMIN, 'taken-over-pass-1'), 'ER_ACCESS_DENIED_ERROR');
    // The same events on an ordinary account work (the refusals above are the guard, not a fault).
    for (const [event, params] of [
      ['grant database', { user: 'app_user', host: '%', database: 'appdb', privileges: 'read-only' }],
      ['set database password', { user: 'app_user', host: '%', password: 'app-user-pass-2' }],
    ] as const) {
      const r = await dispatch(event, params);
      assert.ok(r.ok, `${event}: ${JSON.stringify(r)}`);
    }
    assert.equal(await login('app_user', 'app-user-pass-2', 'appdb'), true);
    const revoked = await dispatch('revoke database', { user: 'app_user', host: '%', database: 'appdb' });
    assert.ok(revoked.ok, JSON.stringify(revoked));
    assert.ok((await dispatch('drop database user', { user: 'app_user', host: '%' })).ok);
  });

  test('the sandbox’s own admin (root by unix_socket) is refused over the real RPC path', async () => {
    // Run as root, the sandbox's mariadbd is administered as its `root` account (server.ts).
    const before = await accountState('root');
    for (const host of ['localhost', '127.0.0.1', '%'])
      for (const [event, params] of attacks('root', host)) {
        const r = await manager.call(HOST, event, params);
        assert.equal(!r.ok && r.error.code, 'invalid-argument', `${event}: ${JSON.stringify(r)}`);
      }
    const listed = await manager.call(HOST, 'list database users', {});
    assert.ok(listed.ok && !listed.data.users.some((u) => u.user === 'root'));
    assert.equal(await accountState('root'), before);
    // Still the working admin: the agent can act.
    const db = await manager.call(HOST, 'create database', { name: 'after_refusals' });
    assert.ok(db.ok, JSON.stringify(db));
  });
});
