import { createHmac, randomBytes } from 'node:crypto';
import type { Db } from '../db/database.ts';

/**
 * A random 32-byte key of the panel, made on first use and kept in the `settings` table
 * (`secret:<purpose>`), one per purpose. Used to key hashes and MACs that must not be guessable
 * from outside (audit placeholders, pre-login CSRF tokens); it never leaves the database.
 */
export function panelSecret(db: Db, purpose: string): Buffer {
  const key = `secret:${purpose}`;
  db.prepare('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)').run(
    key,
    randomBytes(32).toString('base64url'),
  );
  const row = db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string };
  return Buffer.from(row.value, 'base64url');
}

/**
 * What the audit log names a sign-in attempt for a username that does not exist: a placeholder
 * with a short keyed hash, so repeated attempts with one name can be told apart without storing
 * what was typed (often a password typed into the wrong box).
 */
export function unknownUserLabel(db: Db, typed: string): string {
  if (typed === '') return '(empty)';
  const h = createHmac('sha256', panelSecret(db, 'audit-names')).update(typed).digest('hex');
  return `(unknown user ${h.slice(0, 8)})`;
}
