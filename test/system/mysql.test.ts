// MySQL/MariaDB databases and accounts against a real private MariaDB (the sandbox instance the
// agent's mysql module starts), driven through the real RPC path: panel connection manager →
// mutual TLS → agent router → module. Logins are checked with mysql2 over TCP loopback.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Connection } from 'mysql2/promise';
import { loadAgentConfig } from '../../agent/config.ts';
import { exec } from '../../agent/os/exec.ts';
import { systemLayout } from '../../agent/os/layout.ts';
import { createMysqlModule } from '../../agent/modules/mysql/index.ts';
import type { CallContext, ModuleContext } from '../../agent/modules/types.ts';
import { RpcError } from '../../shared/protocol/index.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { rootQuery, tcpConnect } from '../helpers/mysql.ts';

/** A refused login: wrong password (1045) or, for a dropped account, possibly 1698. */
const DENIED = /^ER_ACCESS_DENIED(_NO_PASSWORD)?_ERROR$/;
const HOST = 'db1';

let pki: TestPki;
let agent: RunningAgent;
let manager: ConnectionManager;
let sandbox: string;
let port: number;
let socketPath: string;
let agentLog = '';
/** Every reply body we received, to prove no password ever comes back. */
const replies: string[] = [];

async function call<E extends EventName>(event: E, params: RequestIn<E>) {
  const r = await manager.call(HOST, event, params);
  replies.push(JSON.stringify(r));
  return r;
}

async function ok<E extends EventName>(event: E, params: RequestIn<E>) {
  const r = await call(event, params);
  assert.ok(r.ok, `${event} ${JSON.stringify(params).slice(0, 200)} failed: ${JSON.stringify(r)}`);
  return r.data;
}

async function fails<E extends EventName>(event: E, params: RequestIn<E>, code: string, message?: RegExp) {
  const r = await call(event, params);
  assert.equal(r.ok, false, `${event} should fail with ${code}`);
  if (!r.ok) {
    assert.equal(r.error.code, code, `${event}: ${r.error.message}`);
    if (message) assert.match(r.error.message, message);
  }
}

/** A direct admin connection over the sandbox socket (the test's own view of the server). */
const adminQuery = <T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> =>
  rootQuery<T>(socketPath, sql, params);

/** Everything on the server the module could change: schemas, accounts with hashes, db grants. */
async function serverState(): Promise<string> {
  const dbs = await adminQuery('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1');
  const users = await adminQuery(
    'SELECT User, Host, authentication_string, plugin FROM mysql.user ORDER BY User, Host',
  );
  const grants = await adminQuery('SELECT * FROM mysql.db ORDER BY Db, User, Host');
  const tables = await adminQuery(
    "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1, 2",
  );
  return JSON.stringify({ dbs, users, grants, tables });
}

/** Logs in as a user over TCP loopback; returns the connection or the driver's error code. */
const login = (user: string, password: string, database?: string): Promise<Connection | string> =>
  tcpConnect(port, user, password, database);

async function loginWorks(user: string, password: string, database?: string): Promise<Connection> {
  const c = await login(user, password, database);
  if (typeof c === 'string') assert.fail(`login as ${user} refused: ${c}`);
  return c;
}

async function queryError(c: Connection, sql: string): Promise<string | null> {
  try {
    await c.query(sql);
    return null;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

before(async () => {
  requireRoot('the MySQL system test');
  requireProgram('mariadbd', 'mariadb-server');
  requireProgram('mariadb-install-db', 'mariadb-server');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = tempDir('ponio-my-');
  const cfg = loadAgentConfig(
    { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
    {},
  );
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      agentLog += chunk.toString();
      cb();
    },
  });
  agent = await startAgent(cfg, pino({ level: 'debug' }, sink));
  manager = testManager(pki);
  manager.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  const st = await manager.waitForState(HOST, 'online');
  const mod = st.hello?.modules.find((m) => m.name === 'mysql');
  assert.ok(mod?.available, `mysql module not available: ${JSON.stringify(mod)}\n${agentLog.slice(-3000)}`);
  const cnf = readFileSync(path.join(sandbox, 'var/lib/mysql-sandbox/my.cnf'), 'utf8');
  port = Number(/^port=(\d+)$/m.exec(cnf)?.[1]);
  socketPath = path.join(sandbox, 'run/mysqld.sock');
  assert.ok(port > 0, 'sandbox MariaDB port');
});

after(async () => {
  await manager?.close();
  await agent?.stop();
});

describe('mysql module against a real MariaDB', () => {
  test('database + user + grant: the user logs in over TCP and creates a table', async () => {
    const db = await ok('create database', { name: 'shop' });
    assert.deepEqual(
      { name: db.name, charset: db.charset, collation: db.collation, tables: db.tables },
      { name: 'shop', charset: 'utf8mb4', collation: 'utf8mb4_unicode_ci', tables: 0 },
    );
    const u = await ok('create database user', { user: 'shopuser', host: '%', password: 'first-Pass-1' });
    assert.deepEqual(u, { user: 'shopuser', host: '%', grants: [] });
    const g = await ok('grant database', {
      user: 'shopuser',
      host: '%',
      database: 'shop',
      privileges: 'all',
    });
    assert.equal(g.grants[0]?.database, 'shop');
    assert.ok(g.grants[0]?.privileges.includes('CREATE'));

    const c = await loginWorks('shopuser', 'first-Pass-1', 'shop');
    try {
      await c.query('CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40))');
      await c.query('INSERT INTO items VALUES (1, ?)', ['hammer']);
      const [rows] = await c.query('SELECT name FROM items');
      assert.deepEqual(rows, [{ name: 'hammer' }]);
      // Only this database: the grant does not reach the server's own schema.
      assert.equal(await queryError(c, 'SELECT * FROM mysql.user'), 'ER_TABLEACCESS_DENIED_ERROR');
    } finally {
      await c.end();
    }

    const list = await ok('list databases', {});
    const shop = list.databases.find((d) => d.name === 'shop');
    assert.equal(shop?.tables, 1);
    assert.ok((shop?.sizeBytes ?? 0) > 0, 'size reported');
    assert.ok(!list.databases.some((d) => ['mysql', 'sys', 'information_schema'].includes(d.name)));
    const users = await ok('list database users', {});
    const su = users.users.find((x) => x.user === 'shopuser');
    assert.equal(su?.grants[0]?.database, 'shop');
    assert.ok(
      !users.users.some((x) => x.user === 'root' || x.user === 'mariadb.sys'),
      'server accounts hidden',
    );
  });

  test('a read-only grant can select but not insert; revoke → access denied', async () => {
    await ok('create database user', { user: 'reader', host: '127.0.0.1', password: 'reader-Pass-1' });
    const g = await ok('grant database', {
      user: 'reader',
      host: '127.0.0.1',
      database: 'shop',
      privileges: 'read-only',
    });
    assert.deepEqual(g.grants, [{ database: 'shop', privileges: ['SELECT', 'SHOW VIEW'] }]);
    const c = await loginWorks('reader', 'reader-Pass-1', 'shop');
    try {
      const [rows] = await c.query('SELECT name FROM items');
      assert.deepEqual(rows, [{ name: 'hammer' }]);
      assert.equal(await queryError(c, "INSERT INTO items VALUES (2, 'saw')"), 'ER_TABLEACCESS_DENIED_ERROR');
      assert.equal(await queryError(c, 'DROP TABLE items'), 'ER_TABLEACCESS_DENIED_ERROR');
    } finally {
      await c.end();
    }

    // Granting again replaces the set (custom list, any spelling).
    const g2 = await ok('grant database', {
      user: 'reader',
      host: '127.0.0.1',
      database: 'shop',
      privileges: ['select', 'insert'],
    });
    assert.deepEqual(g2.grants, [{ database: 'shop', privileges: ['SELECT', 'INSERT'] }]);

    const r = await ok('revoke database', { user: 'reader', host: '127.0.0.1', database: 'shop' });
    assert.deepEqual(r.grants, []);
    assert.equal(await login('reader', 'reader-Pass-1', 'shop'), 'ER_DBACCESS_DENIED_ERROR');
    await fails('revoke database', { user: 'reader', host: '127.0.0.1', database: 'shop' }, 'not-found');
  });

  test('a grant on shop_1 covers exactly shop_1, not shopX1 (underscore is not a wildcard)', async () => {
    await ok('create database', { name: 'shop_1' });
    await ok('create database', { name: 'shopX1', charset: 'latin1' });
    await ok('create database user', { user: 'exact', host: '127.0.0.1', password: 'exact-Pass-1' });
    await ok('grant database', { user: 'exact', host: '127.0.0.1', database: 'shop_1', privileges: 'all' });
    const stored = await adminQuery<{ Db: string }>("SELECT Db FROM mysql.db WHERE User = 'exact'");
    assert.deepEqual(stored, [{ Db: 'shop\\_1' }]);
    (await loginWorks('exact', 'exact-Pass-1', 'shop_1')).destroy();
    assert.equal(await login('exact', 'exact-Pass-1', 'shopX1'), 'ER_DBACCESS_DENIED_ERROR');
    // Dropping a database removes the grants on it, so a new database of the same name is not
    // silently open to old accounts.
    await ok('drop database', { name: 'shop_1' });
    assert.deepEqual(await adminQuery("SELECT Db FROM mysql.db WHERE User = 'exact'"), []);
    await ok('drop database', { name: 'shopX1' });
  });

  test('password change: old refused, new accepted (unicode password)', async () => {
    const fresh = 'nouveau-mot-de-passe-é-ü-🔑';
    await ok('set database password', { user: 'shopuser', host: '%', password: fresh });
    assert.equal(await login('shopuser', 'first-Pass-1'), 'ER_ACCESS_DENIED_ERROR');
    (await loginWorks('shopuser', fresh)).destroy();
    await fails('set database password', { user: 'ghost', host: '%', password: 'whatever-1' }, 'not-found');
  });

  test('duplicates, missing things and wrong charsets get clear errors', async () => {
    await fails('create database', { name: 'shop' }, 'already-exists');
    await fails('drop database', { name: 'nope' }, 'not-found');
    await fails(
      'create database user',
      { user: 'shopuser', host: '%', password: 'again-Pass-1' },
      'already-exists',
    );
    await fails(
      'grant database',
      { user: 'shopuser', host: '%', database: 'nope', privileges: 'all' },
      'not-found',
    );
    await fails(
      'grant database',
      { user: 'ghost', host: '%', database: 'shop', privileges: 'all' },
      'not-found',
    );
    await fails('drop database user', { user: 'ghost', host: '%' }, 'not-found');
    await fails(
      'create database',
      { name: 'x1', charset: 'latin1', collation: 'utf8mb4_bin' },
      'invalid-argument',
    );
    await fails('create database', { name: 'x1', charset: 'utf16' as 'latin1' }, 'invalid-argument');
    await fails(
      'grant database',
      { user: 'shopuser', host: '%', database: 'shop', privileges: ['SELECT', 'FILE'] },
      'invalid-argument',
      /FILE/,
    );
    await fails(
      'grant database',
      { user: 'shopuser', host: '%', database: 'shop', privileges: ['GRANT OPTION'] },
      'invalid-argument',
    );
  });

  test('system schemas and server accounts cannot be touched', async () => {
    const before = await serverState();
    for (const name of ['mysql', 'MySQL', 'information_schema', 'performance_schema', 'sys'])
      await fails('drop database', { name }, 'invalid-argument', /system schema/);
    await fails('create database', { name: 'sys' }, 'invalid-argument');
    await fails(
      'grant database',
      { user: 'shopuser', host: '%', database: 'mysql', privileges: 'read-only' },
      'invalid-argument',
    );
    for (const user of ['root', 'Root', 'mariadb.sys', 'mysql', 'debian-sys-maint']) {
      await fails(
        'set database password',
        { user, host: 'localhost', password: 'taken-over-1' },
        'invalid-argument',
      );
      await fails('drop database user', { user, host: 'localhost' }, 'invalid-argument');
      await fails('create database user', { user, host: '%', password: 'taken-over-1' }, 'invalid-argument');
    }
    assert.equal(await serverState(), before);
  });

  test('hostile names and passwords are refused or taken literally; nothing else changes', async () => {
    const canary = await loginWorks('shopuser', 'nouveau-mot-de-passe-é-ü-🔑', 'shop');
    canary.destroy();
    const before = await serverState();
    const hostileNames = [
      'x; DROP DATABASE shop',
      "x'; DROP DATABASE shop; --",
      'x`; DROP DATABASE shop; --',
      'shop` CHARACTER SET latin1; DROP DATABASE `shop',
      'x/* comment */',
      'x -- comment',
      'x#comment',
      'x\0y',
      'x\ny',
      '../etc',
      'x.y',
      'x%',
      'x_%',
      'ｓｈｏｐ', // full-width look-alike
      'shоp', // Cyrillic о
      'a'.repeat(65),
      '',
      ' ',
      '12345',
      '\\',
    ];
    for (const name of hostileNames) {
      await fails('create database', { name }, 'invalid-argument');
      await fails('drop database', { name }, 'invalid-argument');
      await fails(
        'grant database',
        { user: 'shopuser', host: '%', database: name, privileges: 'all' },
        'invalid-argument',
      );
    }
    const hostileUsers = [
      "x'@'%' IDENTIFIED BY 'a'; --",
      'x`@`%`',
      'root@localhost',
      "shopuser' OR '1'='1",
      'x\0',
      'x y',
      '-x',
      '.x',
      'u'.repeat(33),
      'ｒｏｏｔ',
      '',
    ];
    for (const user of hostileUsers) {
      await fails('create database user', { user, host: '%', password: 'valid-Pass-1' }, 'invalid-argument');
      await fails('drop database user', { user, host: '%' }, 'invalid-argument');
    }
    const hostileHosts = [
      "%' IDENTIFIED BY 'x",
      '%`; DROP DATABASE shop; --',
      'evil.example.com',
      '10.0.0.1/33',
      '10.0.0.1/24',
      '300.1.1.1',
      '1.2.3.%.%',
      'fe80::1%eth0',
      '2001:db8::/32',
      '%\n',
      '',
    ];
    for (const host of hostileHosts)
      await fails(
        'create database user',
        { user: 'hostile', host, password: 'valid-Pass-1' },
        'invalid-argument',
      );
    const hostilePasswords = [
      'short',
      'p'.repeat(129),
      'with\0nul-byte',
      'line\nbreak-pass',
      'e\u0301-not-nfc-pass',
    ];
    for (const password of hostilePasswords) {
      await fails('create database user', { user: 'hostile', host: '%', password }, 'invalid-argument');
      await fails('set database password', { user: 'shopuser', host: '%', password }, 'invalid-argument');
    }
    assert.equal(await serverState(), before, 'refused requests changed nothing on the server');

    // Passwords full of SQL are valid passwords: stored literally (as a hash), and they work.
    const literal = [
      "a'; DROP DATABASE shop; -- ",
      'b`); DROP USER `shopuser`@`%`; --',
      "c\\'; SELECT 1; #",
      '"/*!50000 DROP DATABASE shop*/"',
    ];
    await ok('create database user', { user: 'literal', host: '127.0.0.1', password: literal[0] ?? '' });
    await ok('grant database', {
      user: 'literal',
      host: '127.0.0.1',
      database: 'shop',
      privileges: 'read-only',
    });
    for (const password of literal) {
      await ok('set database password', { user: 'literal', host: '127.0.0.1', password });
      const c = await loginWorks('literal', password, 'shop');
      const [rows] = await c.query('SELECT COUNT(*) AS n FROM items');
      assert.deepEqual(rows, [{ n: 1 }]);
      await c.end();
    }
    await ok('drop database user', { user: 'literal', host: '127.0.0.1' });
    assert.equal(await serverState(), before, 'only the legitimate create/drop happened');
  });

  test('host patterns: CIDR is stored as a netmask, wildcard prefixes and IPv6 work', async () => {
    const u = await ok('create database user', { user: 'net', host: '10.1.0.0/16', password: 'net-Pass-12' });
    assert.equal(u.host, '10.1.0.0/255.255.0.0');
    const same = await call('create database user', {
      user: 'net',
      host: '10.1.0.0/255.255.0.0',
      password: 'net-Pass-12',
    });
    assert.equal(!same.ok && same.error.code, 'already-exists');
    await ok('drop database user', { user: 'net', host: '10.1.0.0/16' });
    await ok('create database user', { user: 'net', host: '192.168.1.%', password: 'net-Pass-12' });
    await ok('drop database user', { user: 'net', host: '192.168.1.%' });
    await ok('create database user', { user: 'net', host: '::1', password: 'net-Pass-12' });
    await ok('drop database user', { user: 'net', host: '::1' });
    const rows = await adminQuery("SELECT Host FROM mysql.user WHERE User = 'net'");
    assert.deepEqual(rows, []);
  });

  test('drop user → login refused; drop database → gone', async () => {
    await ok('drop database user', { user: 'shopuser', host: '%' });
    // For an account that no longer exists MariaDB may answer 1045 or 1698 (it fakes an
    // authentication so that accounts cannot be enumerated): both are a refusal.
    const gone = await login('shopuser', 'nouveau-mot-de-passe-é-ü-🔑');
    if (typeof gone !== 'string') {
      gone.destroy();
      assert.fail('a dropped account could still log in');
    }
    assert.match(gone, DENIED);
    await ok('drop database', { name: 'shop' });
    const list = await ok('list databases', {});
    assert.ok(!list.databases.some((d) => d.name === 'shop'));
    const raw = await adminQuery(
      "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'",
    );
    assert.deepEqual(raw, []);
    const users = await ok('list database users', {});
    assert.ok(!users.users.some((x) => x.user === 'shopuser'));
  });

  test('passwords never appear in replies or in the agent log', () => {
    const secrets = [
      'first-Pass-1',
      'reader-Pass-1',
      'nouveau-mot-de-passe',
      'DROP DATABASE shop; -- ',
      'net-Pass-12',
    ];
    const text = replies.join('\n');
    for (const s of secrets) {
      assert.ok(!text.includes(s), `a reply contains the password ${s}`);
      assert.ok(!agentLog.includes(s), `the agent log contains the password ${s}`);
    }
    assert.ok(agentLog.includes('sandbox MariaDB ready'), 'the log was captured');
  });

  test('system mode: the host adapter logs in as root by unix_socket; a missing server is unavailable', async () => {
    const ctx = (settings: Record<string, unknown>): ModuleContext => ({
      layout: systemLayout(),
      exec,
      logger: pino({ level: 'silent' }),
      broadcast: () => undefined,
      agentPort: 7443,
      moduleSettings: { mysql: settings },
    });
    const meta = {
      signal: new AbortController().signal,
      intent: () => Promise.resolve(),
    } as unknown as CallContext;
    // Pointed at the running server's socket, as a host's /run/mysqld/mysqld.sock would be.
    const live = createMysqlModule(ctx({ socket: socketPath }));
    assert.deepEqual(live.availability(), { available: true });
    try {
      await live.handlers['create database']({ name: 'via_system' }, meta);
      const list = await live.handlers['list databases']({}, meta);
      assert.ok(list.databases.some((d) => d.name === 'via_system'));
      await live.handlers['drop database']({ name: 'via_system' }, meta);
    } finally {
      await live.stop?.();
    }
    const down = createMysqlModule(ctx({ socket: path.join(sandbox, 'run/no-such.sock') }));
    try {
      await assert.rejects(live.handlers['list databases']({}, meta), /shutting down/);
      await assert.rejects(down.handlers['list databases']({}, meta), (e: unknown) => {
        assert.ok(e instanceof RpcError);
        assert.equal(e.code, 'unavailable');
        assert.match(e.message, /not reachable through .*no-such\.sock/);
        return true;
      });
    } finally {
      await down.stop?.();
    }
    const misconfigured = createMysqlModule(ctx({ sockett: '/x' }));
    assert.match(misconfigured.availability().reason ?? '', /unknown setting.*sockett/);
    const off = createMysqlModule({ ...ctx({}), moduleSettings: { mysql: false } });
    assert.match(off.availability().reason ?? '', /turned off/);
  });

  test('server down → unavailable, with a clear message', async () => {
    const pid = Number(readFileSync(path.join(sandbox, 'run/mysqld.pid'), 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 50));
      } catch {
        break;
      }
    }
    const r = await call('list databases', {});
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'unavailable');
    assert.match(!r.ok ? r.error.message : '', /MariaDB is not reachable/);
  });
});
