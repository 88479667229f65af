import { test } from 'node:test';
import assert from 'node:assert/strict';
import { safeNext } from '../../server/auth/login.ts';
import { readCookie } from '../../server/auth/sessions.ts';
import { auditFilters } from '../../server/http/audit-page.ts';
import { usernameProblem } from '../../server/auth/users.ts';
import { passwordProblem } from '../../server/auth/passwords.ts';

test('safeNext keeps local paths only', () => {
  assert.equal(safeNext('/hosts/web1?x=1'), '/hosts/web1?x=1');
  for (const bad of [
    '//evil',
    '/\\evil',
    'https://evil',
    'javascript:x',
    '/a b',
    '/login',
    '/x\n',
    42,
    undefined,
    `/${'a'.repeat(600)}`,
  ])
    assert.equal(safeNext(bad), '/', String(bad));
});

test('readCookie reads one well-formed cookie value', () => {
  const v = 'A'.repeat(43);
  assert.equal(readCookie(`a=b; sid=${v}; c=d`, 'sid'), v);
  assert.equal(readCookie('sid=short', 'sid'), null);
  assert.equal(readCookie(`sid=${v};sid=${'B'.repeat(43)}`, 'sid'), v);
  assert.equal(readCookie(`sid=${'A'.repeat(40)}%00`, 'sid'), null);
  assert.equal(readCookie(undefined, 'sid'), null);
});

test('audit filters ignore malformed values', () => {
  assert.deepEqual(auditFilters({ host: 'web1', page: '3' }), { hostId: 'web1', page: 3 });
  assert.deepEqual(auditFilters({ host: ['a', 'b'], page: '-1', actor: 'x'.repeat(300) }), { page: 1 });
});

test('usernames and passwords: clear refusals', () => {
  assert.equal(usernameProblem('ops.team-1'), null);
  for (const bad of ['', 'A', 'Admin', '1abc', 'a b', 'a/b', '..', 'аdmin', 'a'.repeat(33), "o'neil", 'x\n'])
    assert.ok(usernameProblem(bad), JSON.stringify(bad));
  assert.equal(passwordProblem('ten chars!'), null);
  assert.match(passwordProblem('short') ?? '', /at least 10/);
  assert.match(passwordProblem('x'.repeat(257)) ?? '', /at most 256/);
  assert.match(passwordProblem('abcdefghij\0') ?? '', /NUL/);
});
