import { EventEmitter } from 'node:events';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/database.ts';
import { SessionStore } from './sessions.ts';
import { UsersRepo } from './users.ts';
import { GrantsRepo } from '../db/grants.ts';
import { randomPassword } from './passwords.ts';

interface AccountEventMap {
  /** Sessions (by stored key) ended: logout, password change, user disabled or deleted. */
  sessionsEnded: [string[]];
  /** A user's role or host grants changed, or a token was made or revoked: scopes may differ. */
  grantsChanged: [];
}

const SETUP_HASH = 'setup_token_hash';
const SETUP_EXPIRES = 'setup_token_expires';
const SETUP_TTL_MS = 60 * 60 * 1000;

/** Users, sessions and the events the realtime layer listens to (to drop sockets of ended sessions). */
export class Accounts {
  readonly users: UsersRepo;
  readonly sessions: SessionStore;
  /** Host-scoped grants (server/auth/scope.ts). */
  readonly grants: GrantsRepo;
  readonly events = new EventEmitter<AccountEventMap>();

  constructor(private readonly db: Db) {
    this.users = new UsersRepo(db);
    this.sessions = new SessionStore(db);
    this.grants = new GrantsRepo(db);
  }

  /** Signs a user out everywhere except `keepKey`'s session. */
  endUserSessions(userId: number, keep?: Parameters<SessionStore['destroyForUser']>[1]): void {
    const gone = this.sessions.destroyForUser(userId, keep);
    if (gone.length > 0) this.events.emit('sessionsEnded', gone);
  }

  /**
   * First run: when there is no user at all, creates `admin` with a random password and a
   * one-time setup token (1 h) that lets the admin choose a password in the browser instead.
   * Returns both to print once, or null when accounts already exist.
   */
  async ensureFirstAdmin(): Promise<{ username: string; password: string; setupToken: string } | null> {
    if (this.users.count() > 0) return null;
    const password = randomPassword();
    await this.users.create({ username: 'admin', password, role: 'admin' });
    const setupToken = randomBytes(24).toString('base64url');
    const put = this.db.prepare('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)');
    put.run(SETUP_HASH, createHash('sha256').update(setupToken).digest('hex'));
    put.run(SETUP_EXPIRES, String(Date.now() + SETUP_TTL_MS));
    return { username: 'admin', password, setupToken };
  }

  /** True when `token` is the live one-time setup token. */
  checkSetupToken(token: unknown): boolean {
    if (typeof token !== 'string' || token.length < 20 || token.length > 100) return false;
    const get = (k: string): string | undefined =>
      (this.db.prepare('SELECT value FROM settings WHERE key = ?').get(k) as { value: string } | undefined)
        ?.value;
    const hash = get(SETUP_HASH);
    const expires = Number(get(SETUP_EXPIRES) ?? 0);
    if (!hash || expires <= Date.now()) return false;
    const given = Buffer.from(createHash('sha256').update(token).digest('hex'));
    return given.length === hash.length && timingSafeEqual(given, Buffer.from(hash));
  }

  /**
   * Uses the setup token up: true for exactly one caller holding the live token. Synchronous
   * (check and delete in one SQLite transaction), so a caller must claim before its first
   * `await` and concurrent requests with one token cannot both pass.
   */
  claimSetupToken(token: unknown): boolean {
    return this.db.transaction(() => {
      if (!this.checkSetupToken(token)) return false;
      this.clearSetupToken();
      return true;
    })();
  }

  /** Burns the setup token (used, or any successful login made it unnecessary). */
  clearSetupToken(): void {
    this.db.prepare('DELETE FROM settings WHERE key IN (?, ?)').run(SETUP_HASH, SETUP_EXPIRES);
  }
}
