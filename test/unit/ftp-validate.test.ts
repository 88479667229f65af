import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateFtpHome, validateFtpPassword, validateFtpUsername } from '../../shared/validate/ftp.ts';
import { rpcEvents } from '../../shared/protocol/index.ts';

test('FTP user names: ordinary names pass unchanged', () => {
  for (const name of ['alice', 'bob@example.com', 'web_1', 'a', 'x.y-z', '_svc', 'a'.repeat(64)]) {
    const r = validateFtpUsername(name);
    assert.ok(r.ok, `${name}: ${!r.ok ? r.message : ''}`);
    assert.equal(r.value, name);
  }
});

test('FTP user names: anything that could forge a passwd line or confuse a person is refused', () => {
  const hostile = [
    '',
    'a:b',
    'evil\nroot:x:0:0::/:/bin/sh',
    'a\rb',
    'a/b',
    '../etc',
    '-rf',
    '.hidden',
    'trailing.',
    'a'.repeat(65),
    'Alice',
    'аlice', // Cyrillic а
    'ａlice', // full-width
    'al\u200bice', // zero-width space
    'bob; rm -rf /',
    "x' OR '1'='1",
    'nul\0byte',
    'sp ace',
    'tab\tx',
    '$(id)',
    '`id`',
    'root',
    'www-data',
    'anonymous',
  ];
  for (const name of hostile) {
    const r = validateFtpUsername(name);
    assert.equal(r.ok, false, `accepted ${JSON.stringify(name)}`);
    assert.ok(!r.ok && r.message.length > 10 && !/[\n\0]/.test(r.message), 'a readable message');
  }
  assert.equal(validateFtpUsername(42).ok, false);
});

test('FTP passwords: length and control characters', () => {
  assert.ok(validateFtpPassword('correct horse').ok);
  assert.ok(validateFtpPassword('pässwörd-ünicode').ok);
  assert.ok(validateFtpPassword('x'.repeat(128)).ok);
  for (const pw of ['', 'Qz7!k', 'x'.repeat(129), 'line\nbreak1', 'nul\0byte-pw', 'tab\there-pw']) {
    const r = validateFtpPassword(pw);
    assert.equal(r.ok, false, `accepted ${JSON.stringify(pw)}`);
    assert.ok(!r.ok && (pw === '' || !r.message.includes(pw)), 'the password is not echoed');
  }
});

test('FTP homes: absolute normal paths pass, a trailing slash is dropped', () => {
  assert.deepEqual(validateFtpHome('/var/www/a.com/public_html'), {
    ok: true,
    value: '/var/www/a.com/public_html',
  });
  assert.deepEqual(validateFtpHome('/srv/ftp/bob/'), { ok: true, value: '/srv/ftp/bob' });
});

test('FTP homes: traversal, separators and invisible characters are refused', () => {
  for (const home of [
    '',
    'var/www/a.com',
    '/var/www/../etc',
    '/var/www/./a.com',
    '/var//www',
    '/var/www/a:b',
    '/var/www/a\nb',
    '/var/www/a\0b',
    '/var/www/a\u200bb',
    '/var/www/a\u202eb',
    `/var/www/${'x'.repeat(256)}`,
    `/${'a/'.repeat(600)}`,
  ]) {
    assert.equal(validateFtpHome(home).ok, false, `accepted ${JSON.stringify(home)}`);
  }
});

test('the protocol uses the shared validators and marks the password as a secret', () => {
  const create = rpcEvents['create ftp user'];
  assert.deepEqual(create.secrets, ['password']);
  assert.deepEqual(rpcEvents['set ftp password'].secrets, ['password']);
  const bad = create.request.safeParse({ username: 'a:b', password: 'long enough', home: '/srv/ftp/x' });
  assert.equal(bad.success, false);
  assert.match(bad.error?.issues[0]?.message ?? '', /":"/);
  const good = create.request.safeParse({ username: 'bob', password: 'long enough', home: '/srv/ftp/x/' });
  assert.ok(good.success);
  assert.equal(good.data.home, '/srv/ftp/x');
});
