import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from '../../server/db/database.ts';
import { HostsRepo } from '../../server/db/hosts.ts';
import { EnrollmentError, parseHostAddress, parseHostName } from '../../server/hosts/enrollment-input.ts';
import { JoinTokens, hashToken } from '../../server/hosts/enrollment-tokens.ts';
import { enrollCommand } from '../../server/hosts/enrollment.ts';
import { renewalDue } from '../../server/hosts/renewal.ts';

test('host addresses: HOST[:PORT], [v6]:PORT, bare v6; bad input refused with a sentence', () => {
  assert.deepEqual(parseHostAddress('web1.example.com'), { address: 'web1.example.com', port: 7443 });
  assert.deepEqual(parseHostAddress('WEB1.Example.com:8000'), { address: 'web1.example.com', port: 8000 });
  assert.deepEqual(parseHostAddress('192.0.2.7:7444'), { address: '192.0.2.7', port: 7444 });
  assert.deepEqual(parseHostAddress('2001:db8::1'), { address: '2001:db8::1', port: 7443 });
  assert.deepEqual(parseHostAddress('[2001:db8::1]:9000'), { address: '2001:db8::1', port: 9000 });
  assert.deepEqual(parseHostAddress('localhost', 7000), { address: 'localhost', port: 7000 });
  assert.deepEqual(parseHostAddress('localhost:7000', '7000'), { address: 'localhost', port: 7000 });
  for (const bad of [
    '',
    'a b',
    'host:0',
    'host:65536',
    'host:abc',
    'x;rm -rf /',
    '$(id)',
    '`id`',
    '../../etc',
    'exa\nmple.com',
    'exa\u0000mple.com',
    '[::1',
    '[example.com]:80',
    '999.1.1.1',
    'ex_ample.com',
    'ехample.com', // Cyrillic "е"
    '-bad.example',
    'a'.repeat(300),
    'h\u2028x',
  ]) {
    assert.throws(
      () => parseHostAddress(bad),
      (e: unknown) => e instanceof EnrollmentError && e.code === 'invalid-argument' && e.message.length > 10,
      JSON.stringify(bad),
    );
  }
  assert.throws(() => parseHostAddress('h:7000', 7001), /port is given twice/);
  assert.throws(() => parseHostAddress(42), /needs an address/);
});

test('host names: letters, digits, dashes; 63 at most', () => {
  assert.equal(parseHostName('Web-1'), 'Web-1');
  for (const bad of ['', '-a', 'a-', 'a_b', 'a.b', 'a b', 'wеb', "a'b", 'x'.repeat(64), 'a\nb', null, 5]) {
    assert.throws(() => parseHostName(bad), EnrollmentError, JSON.stringify(bad));
  }
});

test('the enrollment command has the exact documented form', () => {
  const pin = `sha256:${'a'.repeat(64)}`;
  assert.equal(
    enrollCommand('https://panel.example:8443/', 'pjt_abc-DEF_1', pin),
    `ponio-agent enroll --panel https://panel.example:8443 --token pjt_abc-DEF_1 --ca-pin ${pin}`,
  );
  // Anything odd in a configured URL is quoted for the shell, never pasted raw.
  assert.equal(
    enrollCommand("https://p.example/$(id)'", 'pjt_x', pin),
    `ponio-agent enroll --panel 'https://p.example/$(id)'\\''' --token pjt_x --ca-pin ${pin}`,
  );
});

test('renewal is due at two thirds of the life the panel gave a certificate', () => {
  assert.equal(renewalDue(0, 90), 60);
  assert.equal(renewalDue(1_000, 31_000), 21_000);
});

test('join tokens: stored hashed, single use, expire, re-issue revokes the previous one', () => {
  const db = openDatabase(':memory:');
  try {
    new HostsRepo(db).insert({ id: 'h1', name: 'h1', address: '127.0.0.1', port: 7443 });
    const tokens = new JoinTokens(db, 60_000);
    const now = 1_000_000;
    const a = tokens.issue('h1', now);
    assert.match(a.token, /^pjt_[A-Za-z0-9_-]{43}$/);
    assert.equal(a.expiresAt, now + 60_000);
    const stored = JSON.stringify(db.prepare('SELECT * FROM join_tokens').all());
    assert.ok(!stored.includes(a.token));
    assert.ok(stored.includes(hashToken(a.token)));
    const rowA = tokens.find(a.token);
    assert.ok(rowA);
    assert.equal(tokens.find(`${a.token}x`), null);
    // Expired: cannot be claimed.
    assert.equal(tokens.claim(rowA.id, now + 60_000), false);
    // Re-issue revokes A; B is claimed once only.
    const b = tokens.issue('h1', now + 10);
    assert.ok(tokens.find(a.token)?.revoked_at);
    assert.equal(tokens.claim(rowA.id, now + 20), false);
    const rowB = tokens.find(b.token);
    assert.ok(rowB);
    assert.deepEqual(tokens.pending('h1', now + 20), { createdAt: now + 10, expiresAt: now + 10 + 60_000 });
    assert.equal(tokens.claim(rowB.id, now + 20), true);
    assert.equal(tokens.claim(rowB.id, now + 21), false);
    assert.equal(tokens.pending('h1', now + 22), null);
  } finally {
    db.close();
  }
});
