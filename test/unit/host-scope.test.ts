import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileGrants,
  describeGrants,
  highestRole,
  parseGrantText,
  roleIn,
  validateGrants,
  wholeFleet,
  type HostScope,
} from '../../server/auth/scope.ts';

const scope = (
  ceiling: HostScope['ceiling'],
  ...layers: Parameters<typeof compileGrants>[0][]
): HostScope => ({
  ceiling,
  layers: layers.map(compileGrants),
});
const web = { role: 'web', dc: 'ams' };
const db = { role: 'db', dc: 'fra' };

test('no layer: the whole fleet at the ceiling', () => {
  assert.equal(roleIn(wholeFleet('operator'), db), 'operator');
});

test('a user layer: the highest matching grant, capped by the ceiling; no match = out of scope', () => {
  const s = scope('operator', [
    { role: 'operator', selector: 'role=web' },
    { role: 'viewer', selector: null },
  ]);
  assert.equal(roleIn(s, web), 'operator');
  assert.equal(roleIn(s, db), 'viewer');
  assert.equal(roleIn(scope('viewer', [{ role: 'operator', selector: 'role=web' }]), web), 'viewer');
  assert.equal(roleIn(scope('operator', [{ role: 'operator', selector: 'role=web,dc!=ams' }]), web), null);
  assert.equal(roleIn(scope('operator', [{ role: 'operator', selector: 'role=web' }]), {}), null);
});

test('layers intersect: a token is never wider than its creator', () => {
  const creator = [{ role: 'operator' as const, selector: 'dc=ams' }];
  const token = [{ role: 'viewer' as const, selector: 'role' }];
  const s = scope('operator', creator, token);
  assert.equal(roleIn(s, web), 'viewer', 'the lower of the two');
  assert.equal(roleIn(s, db), null, 'creator does not see fra');
  assert.equal(roleIn(s, { dc: 'ams' }), null, 'token needs a role label');
  assert.equal(roleIn({ ceiling: 'operator', layers: [[]] }, web), null, 'an empty layer sees nothing');
});

test('grant validation: sentences for bad input', () => {
  assert.deepEqual(validateGrants([{ role: 'viewer' }]), {
    ok: true,
    value: [{ role: 'viewer', selector: null }],
  });
  for (const bad of [
    null,
    'x',
    [{ role: 'admin', selector: null }],
    [{ role: 'root' }],
    [{ role: 'viewer', selector: 'a=b;c' }],
    [{ role: 'viewer', selector: '' }],
    [{ role: 'viewer', selector: 'rоle=web' }], // Cyrillic о
    [{ role: 'viewer', selector: null, x: 1 }],
    [[]],
  ]) {
    const r = validateGrants(bad);
    assert.equal(r.ok, false, JSON.stringify(bad));
    if (!r.ok) assert.ok(r.message.length > 10);
  }
});

test('grant text (CLI, Users page): role:selector lines, * for all hosts', () => {
  const r = parseGrantText('operator:role=web\n viewer:* ;');
  assert.deepEqual(r, {
    ok: true,
    value: [
      { role: 'operator', selector: 'role=web' },
      { role: 'viewer', selector: null },
    ],
  });
  assert.equal(parseGrantText('operator role=web').ok, false);
  assert.deepEqual(parseGrantText(''), { ok: true, value: [] });
  if (r.ok) {
    assert.equal(describeGrants(r.value), 'operator on role=web; viewer on all hosts');
    assert.equal(highestRole(r.value), 'operator');
  }
  assert.equal(highestRole([]), null);
});
