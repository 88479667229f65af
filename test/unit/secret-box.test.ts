import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SECRET_KEY_FILE, SecretBox } from '../../server/auth/secret-box.ts';

test('sealed secrets open only with the same key file and the same user', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-box-'));
  const other = mkdtempSync(path.join(os.tmpdir(), 'ponio-box-'));
  try {
    const box = SecretBox.load(dir);
    assert.equal(statSync(path.join(dir, SECRET_KEY_FILE)).mode & 0o777, 0o600);
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'totp:1');
    assert.ok(!sealed.includes('JBSWY3DPEHPK3PXP'));
    assert.notEqual(box.seal('JBSWY3DPEHPK3PXP', 'totp:1'), sealed, 'a fresh IV each time');
    assert.equal(SecretBox.load(dir).open(sealed, 'totp:1'), 'JBSWY3DPEHPK3PXP', 'the key file is reused');
    assert.equal(box.open(sealed, 'totp:2'), null, "another user's row does not open");
    assert.equal(SecretBox.load(other).open(sealed, 'totp:1'), null, 'another key does not open');
    const parts = sealed.split('.');
    parts[3] = Buffer.from('tampered').toString('base64url');
    assert.equal(box.open(parts.join('.'), 'totp:1'), null, 'tampering is detected');
    assert.equal(box.open('garbage', 'totp:1'), null);
    writeFileSync(path.join(other, SECRET_KEY_FILE), 'short\n');
    assert.throws(() => SecretBox.load(other), /32-byte key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});
