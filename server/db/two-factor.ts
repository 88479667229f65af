import type { Db } from './database.ts';

export interface TotpRow {
  user_id: number;
  secret_enc: string;
  created_at: number;
  confirmed_at: number | null;
  last_step: number | null;
}

export interface WebauthnRow {
  id: number;
  user_id: number;
  credential_id: string;
  public_key: string;
  counter: number;
  transports: string | null;
  name: string;
  created_at: number;
  last_used_at: number | null;
}

/** Who must use a second factor (settings key `require_two_factor`). */
export const REQUIRE_2FA = ['off', 'admins', 'everyone'] as const;
export type Require2fa = (typeof REQUIRE_2FA)[number];

/** Tables of two-factor sign-in (migration 421): TOTP seeds, recovery codes, WebAuthn credentials. */
export class TwoFactorRepo {
  constructor(private readonly db: Db) {}

  totp(userId: number): TotpRow | null {
    return (
      (this.db.prepare('SELECT * FROM user_totp WHERE user_id = ?').get(userId) as TotpRow | undefined) ??
      null
    );
  }

  /** Starts (or restarts) an enrolment: an unconfirmed seed replaces any earlier one. */
  putTotp(userId: number, secretEnc: string): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO user_totp (user_id, secret_enc, created_at, confirmed_at, last_step) VALUES (?, ?, ?, NULL, NULL)',
      )
      .run(userId, secretEnc, Date.now());
  }

  confirmTotp(userId: number, step: number): void {
    this.db
      .prepare('UPDATE user_totp SET confirmed_at = ?, last_step = ? WHERE user_id = ?')
      .run(Date.now(), step, userId);
  }

  /** Records an accepted time step; false when it (or a later one) was already used. */
  useTotpStep(userId: number, step: number): boolean {
    return (
      this.db
        .prepare(
          'UPDATE user_totp SET last_step = ? WHERE user_id = ? AND (last_step IS NULL OR last_step < ?)',
        )
        .run(step, userId, step).changes > 0
    );
  }

  deleteTotp(userId: number): boolean {
    return this.db.prepare('DELETE FROM user_totp WHERE user_id = ?').run(userId).changes > 0;
  }

  /** Replaces the user's recovery codes (hashes) in one transaction. */
  setRecoveryCodes(userId: number, hashes: readonly string[]): void {
    const ins = this.db.prepare('INSERT INTO user_recovery_codes (user_id, code_hash) VALUES (?, ?)');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM user_recovery_codes WHERE user_id = ?').run(userId);
      for (const h of hashes) ins.run(userId, h);
    })();
  }

  unusedRecoveryCodes(userId: number): number {
    return (
      this.db
        .prepare('SELECT COUNT(*) AS n FROM user_recovery_codes WHERE user_id = ? AND used_at IS NULL')
        .get(userId) as { n: number }
    ).n;
  }

  /** Uses up a recovery code: true for exactly one caller (one UPDATE … WHERE used_at IS NULL). */
  useRecoveryCode(userId: number, hash: string): boolean {
    return (
      this.db
        .prepare(
          'UPDATE user_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL',
        )
        .run(Date.now(), userId, hash).changes > 0
    );
  }

  credentials(userId: number): WebauthnRow[] {
    return this.db
      .prepare('SELECT * FROM user_webauthn WHERE user_id = ? ORDER BY id')
      .all(userId) as WebauthnRow[];
  }

  addCredential(c: {
    userId: number;
    credentialId: string;
    publicKey: string;
    counter: number;
    transports: string[] | undefined;
    name: string;
  }): void {
    this.db
      .prepare(
        'INSERT INTO user_webauthn (user_id, credential_id, public_key, counter, transports, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        c.userId,
        c.credentialId,
        c.publicKey,
        c.counter,
        c.transports ? JSON.stringify(c.transports) : null,
        c.name,
        Date.now(),
      );
  }

  credentialUsed(id: number, counter: number): void {
    this.db
      .prepare('UPDATE user_webauthn SET counter = ?, last_used_at = ? WHERE id = ?')
      .run(counter, Date.now(), id);
  }

  deleteCredential(userId: number, id: number): WebauthnRow | null {
    const row = this.db
      .prepare('SELECT * FROM user_webauthn WHERE id = ? AND user_id = ?')
      .get(id, userId) as WebauthnRow | undefined;
    if (!row) return null;
    this.db.prepare('DELETE FROM user_webauthn WHERE id = ?').run(id);
    return row;
  }

  putChallenge(challenge: string, userId: number, purpose: 'register' | 'sign-in', ttlMs: number): void {
    const now = Date.now();
    this.db.prepare('DELETE FROM webauthn_challenges WHERE expires_at <= ?').run(now);
    this.db
      .prepare(
        'INSERT INTO webauthn_challenges (challenge, user_id, purpose, expires_at) VALUES (?, ?, ?, ?)',
      )
      .run(challenge, userId, purpose, now + ttlMs);
  }

  /** Uses up a live challenge of that user and purpose: true once. */
  takeChallenge(challenge: string, userId: number, purpose: 'register' | 'sign-in'): boolean {
    return (
      this.db
        .prepare(
          'DELETE FROM webauthn_challenges WHERE challenge = ? AND user_id = ? AND purpose = ? AND expires_at > ?',
        )
        .run(challenge, userId, purpose, Date.now()).changes > 0
    );
  }

  /** Removes every factor of a user (admin reset, CLI): TOTP, recovery codes, credentials. */
  resetAll(userId: number): { totp: boolean; recoveryCodes: number; credentials: number } {
    return this.db.transaction(() => ({
      totp: this.db.prepare('DELETE FROM user_totp WHERE user_id = ?').run(userId).changes > 0,
      recoveryCodes: this.db.prepare('DELETE FROM user_recovery_codes WHERE user_id = ?').run(userId).changes,
      credentials: this.db.prepare('DELETE FROM user_webauthn WHERE user_id = ?').run(userId).changes,
    }))();
  }

  requirement(): Require2fa {
    const v = (
      this.db.prepare("SELECT value FROM settings WHERE key = 'require_two_factor'").get() as
        { value: string } | undefined
    )?.value;
    return (REQUIRE_2FA as readonly string[]).includes(v ?? '') ? (v as Require2fa) : 'off';
  }

  setRequirement(v: Require2fa): void {
    this.db.prepare("INSERT OR REPLACE INTO settings (key, value) VALUES ('require_two_factor', ?)").run(v);
  }
}
