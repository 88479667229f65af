import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  validateCharset,
  validateDatabaseName,
  validateDatabasePassword,
  validateDatabaseUser,
  validateHostPattern,
  validatePrivileges,
} from '../../shared/validate/mysql.ts';
import {
  grantTarget,
  identifiedBy,
  identifiedByHash,
  nativePasswordHash,
  privilegeList,
  quoteAccount,
  quoteDb,
  storedGrantTarget,
  unescapeGrantDb,
} from '../../agent/modules/mysql/sql.ts';
import { hasUnescapedWildcard } from '../../agent/modules/mysql/admin.ts';
import { mysqlEvents } from '../../shared/protocol/events/mysql.ts';

const ok = <T>(r: { ok: true; value: T } | { ok: false; message: string }): T => {
  assert.ok(r.ok, r.ok ? '' : r.message);
  return r.value;
};
const bad = (r: { ok: boolean; message?: string }, pattern?: RegExp): void => {
  assert.equal(r.ok, false);
  if (pattern) assert.match(r.message ?? '', pattern);
};

test('database names: letters, digits, underscore; no system schemas', () => {
  for (const n of ['shop', 'shop_1', 'A1', '_x', 'a'.repeat(64), '2024_shop'])
    assert.equal(ok(validateDatabaseName(n)), n);
  for (const n of [
    '',
    'a'.repeat(65),
    'x-y',
    'x y',
    'x;y',
    "x'",
    'x`',
    'x\0',
    'x\n',
    'ｓｈｏｐ',
    'shоp',
    '123',
    '../x',
    'x.y',
    'x%',
  ])
    bad(validateDatabaseName(n));
  for (const n of ['mysql', 'MYSQL', 'information_schema', 'performance_schema', 'sys'])
    bad(validateDatabaseName(n), /system schema/);
  bad(validateDatabaseName(42));
});

test('user names: 1–32, safe characters, not reserved', () => {
  for (const n of ['app', 'app.ro', 'app-rw', 'a_b', 'u'.repeat(32)])
    assert.equal(ok(validateDatabaseUser(n)), n);
  for (const n of ['', 'u'.repeat(33), '-x', '.x', 'a b', "a'", 'a`', 'a@b', 'a\0', 'ａｐｐ'])
    bad(validateDatabaseUser(n));
  for (const n of ['root', 'ROOT', 'mariadb.sys', 'mysql', 'debian-sys-maint', 'PUBLIC'])
    bad(validateDatabaseUser(n), /reserved/);
});

test('host patterns are normalised to what the server stores', () => {
  const cases: [string, string][] = [
    ['localhost', 'localhost'],
    ['%', '%'],
    ['127.0.0.1', '127.0.0.1'],
    ['10.0.0.0/8', '10.0.0.0/255.0.0.0'],
    ['192.168.1.0/24', '192.168.1.0/255.255.255.0'],
    ['192.168.1.0/255.255.255.0', '192.168.1.0/255.255.255.0'],
    ['10.1.2.3/32', '10.1.2.3'],
    ['0.0.0.0/0', '%'],
    ['192.168.1.%', '192.168.1.%'],
    ['10.%', '10.%'],
    ['::1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
  ];
  for (const [input, stored] of cases) assert.equal(ok(validateHostPattern(input)), stored, input);
  for (const h of [
    '',
    'example.com',
    'local host',
    '%%',
    '10.0.0.1/24',
    '10.0.0.0/33',
    '10.0.0.0/255.0.255.0',
    '300.0.0.1',
    '1.2.3.%.%',
    '01.2.%',
    '2001:db8::/32',
    "%' OR 1",
    '%`',
    'fe80::1%eth0',
    '%\n',
    'x'.repeat(61),
  ])
    bad(validateHostPattern(h));
});

test('passwords: 8–128, no control characters, NFC; messages never echo them', () => {
  assert.equal(ok(validateDatabasePassword("a'; DROP DATABASE x; --")), "a'; DROP DATABASE x; --");
  for (const p of ['short', 'p'.repeat(129), 'with\0nul-byte', 'line\nbreak-x', 'e\u0301-not-nfc-pass']) {
    const r = validateDatabasePassword(p);
    assert.equal(r.ok, false);
    if (!r.ok) assert.ok(!r.message.includes(p.slice(0, 5)) || p === 'short', r.message);
  }
});

test('privilege sets: all, read-only, custom lists from the allow-list only', () => {
  assert.ok(ok(validatePrivileges('all')).includes('TRIGGER'));
  assert.deepEqual(ok(validatePrivileges('read-only')), ['SELECT', 'SHOW VIEW']);
  assert.deepEqual(ok(validatePrivileges(['insert', 'select', 'create_temporary-tables', 'SELECT'])), [
    'SELECT',
    'INSERT',
    'CREATE TEMPORARY TABLES',
  ]);
  for (const p of [
    [],
    ['FILE'],
    ['SUPER'],
    ['GRANT OPTION'],
    ['ALL PRIVILEGES'],
    ['SELECT; DROP'],
    'everything',
    [1],
  ])
    bad(validatePrivileges(p));
});

test('charsets and collations come from the allow-list and must match', () => {
  assert.deepEqual(ok(validateCharset(undefined, undefined)), {
    charset: 'utf8mb4',
    collation: 'utf8mb4_unicode_ci',
  });
  assert.deepEqual(ok(validateCharset('latin1', undefined)), {
    charset: 'latin1',
    collation: 'latin1_swedish_ci',
  });
  assert.deepEqual(ok(validateCharset(undefined, 'utf8mb4_bin')), {
    charset: 'utf8mb4',
    collation: 'utf8mb4_bin',
  });
  bad(validateCharset('latin1', 'utf8mb4_bin'), /does not belong/);
  bad(validateCharset('utf16', undefined));
  bad(validateCharset(undefined, 'utf8mb4_bin; DROP'));
});

test('protocol schemas apply the validators and reject unknown fields', () => {
  const create = mysqlEvents['create database user'].request;
  const r = create.safeParse({ user: 'app', host: '10.0.0.0/24', password: 'secret-pass' });
  assert.ok(r.success);
  assert.equal(r.data.host, '10.0.0.0/255.255.255.0');
  assert.equal(
    create.safeParse({ user: 'app', host: '%', password: 'secret-pass', admin: true }).success,
    false,
  );
  assert.equal(
    mysqlEvents['create database'].request.safeParse({ name: 'x', collation: 'utf8mb4_bin; DROP' }).success,
    false,
  );
  // The pair check (latin1 + utf8mb4_bin) is the agent's (validateCharset), proven by the system test.
  assert.equal(
    mysqlEvents['create database'].request.safeParse({
      name: 'x',
      charset: 'latin1',
      collation: 'utf8mb4_bin',
    }).success,
    true,
  );
  assert.equal(
    mysqlEvents['create database'].request.safeParse({ name: 'x', collation: 'latin1_bin' }).success,
    true,
  );
  assert.deepEqual(mysqlEvents['create database user'].secrets, ['password']);
});

test('quoting re-checks the alphabet and escapes the grant wildcard', () => {
  assert.equal(quoteDb('shop_1'), '`shop_1`');
  assert.equal(grantTarget('shop_1'), '`shop\\_1`.*');
  assert.equal(storedGrantTarget('shop\\_1'), '`shop\\_1`.*');
  assert.equal(unescapeGrantDb('shop\\_1'), 'shop_1');
  assert.equal(quoteAccount('app.ro', '10.0.0.0/255.0.0.0'), '`app.ro`@`10.0.0.0/255.0.0.0`');
  for (const n of ['a`b', 'a b', "a'", '', 'a'.repeat(65)]) assert.throws(() => quoteDb(n));
  assert.throws(() => grantTarget('x`.*; --'));
  assert.throws(() => storedGrantTarget('x%'));
  assert.throws(() => quoteAccount("a'", '%'));
  assert.throws(() => quoteAccount('a', "%' OR 1"));
  assert.throws(() => privilegeList(['SELECT', 'DROP; x']));
  assert.throws(() => identifiedByHash("*'; DROP"));
  assert.ok(hasUnescapedWildcard('shop_1'));
  assert.ok(!hasUnescapedWildcard('shop\\_1'));
});

test('passwords become mysql_native_password hashes; the SQL never holds the password', () => {
  // Known value: PASSWORD('password') on MariaDB.
  assert.equal(nativePasswordHash('password'), '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19');
  const pw = "x'); DROP USER root; --";
  const sql = identifiedBy(pw);
  assert.ok(!sql.includes(pw));
  assert.match(sql, /^IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}'$/);
  const inner = createHash('sha1').update(Buffer.from('é', 'utf8')).digest();
  assert.equal(nativePasswordHash('é'), `*${createHash('sha1').update(inner).digest('hex').toUpperCase()}`);
});
