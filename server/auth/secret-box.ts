import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The key file in the panel's data dir (0600), made on first start. */
export const SECRET_KEY_FILE = 'two-factor.key';

/**
 * Encrypts small secrets at rest (TOTP seeds) with AES-256-GCM under a key kept in a file of
 * the data dir, not in the database: a copy of panel.db alone (a backup, a MariaDB dump) does
 * not give the seeds. Format: `v1.<iv>.<tag>.<ciphertext>`, base64url, with the user id bound
 * as associated data (a row copied onto another user does not decrypt).
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static load(dataDir: string): SecretBox {
    const file = path.join(dataDir, SECRET_KEY_FILE);
    if (!existsSync(file)) {
      // 'wx': of two panels starting at once, one writes; the other reads the same key.
      try {
        writeFileSync(file, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    chmodSync(file, 0o600);
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key (base64url).`);
    return new SecretBox(key);
  }

  seal(plain: string, aad: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv, c.getAuthTag(), ct]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  /** The plaintext, or null when the box is not ours (other key, other user, tampered). */
  open(sealed: string, aad: string): string | null {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      d.setAAD(Buffer.from(aad));
      d.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
