import type { Db } from '../db/database.ts';
import { isRole, type Role } from './roles.ts';
import { hashPassword, passwordProblem } from './passwords.ts';

export interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  role: Role;
  disabled: number;
  must_change_password: number;
  created_at: number;
  password_changed_at: number | null;
}

/** A user as shown in pages and API replies (never the hash). */
export interface UserView {
  id: number;
  username: string;
  role: Role;
  disabled: boolean;
  mustChangePassword: boolean;
  createdAt: number;
  passwordChangedAt: number | null;
}

export const userView = (u: UserRow): UserView => ({
  id: u.id,
  username: u.username,
  role: u.role,
  disabled: u.disabled === 1,
  mustChangePassword: u.must_change_password === 1,
  createdAt: u.created_at,
  passwordChangedAt: u.password_changed_at,
});

export class UserInputError extends Error {
  constructor(
    message: string,
    readonly code:
      'invalid-argument' | 'already-exists' | 'not-found' | 'failed-precondition' = 'invalid-argument',
  ) {
    super(message);
    this.name = 'UserInputError';
  }
}

const USERNAME = /^[a-z][a-z0-9._-]{1,31}$/;

/** Why a username is not acceptable, or null. */
export function usernameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'A username is required.';
  if (!USERNAME.test(name))
    return 'The username must be 2–32 characters: lower-case letters, digits, dot, dash or underscore, starting with a letter.';
  return null;
}

/** Panel accounts (table users). Passwords are scrypt hashes; the last enabled admin cannot be removed. */
export class UsersRepo {
  constructor(private readonly db: Db) {}

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  list(): UserRow[] {
    return this.db.prepare('SELECT * FROM users ORDER BY username').all() as UserRow[];
  }

  get(id: number): UserRow | null {
    return (this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined) ?? null;
  }

  getByName(username: string): UserRow | null {
    if (typeof username !== 'string' || username.length > 64) return null;
    return (
      (this.db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined) ?? null
    );
  }

  async create(u: {
    username: unknown;
    password: unknown;
    role: unknown;
    mustChangePassword?: boolean;
  }): Promise<UserRow> {
    const up = usernameProblem(u.username);
    if (up) throw new UserInputError(up);
    if (!isRole(u.role)) throw new UserInputError('The role must be admin, operator or viewer.');
    const pp = passwordProblem(u.password);
    if (pp) throw new UserInputError(pp);
    const username = u.username as string;
    if (this.getByName(username))
      throw new UserInputError(`A user named ${username} already exists.`, 'already-exists');
    const hash = await hashPassword(u.password as string);
    const info = this.db
      .prepare(
        'INSERT INTO users (username, password_hash, role, must_change_password, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(username, hash, u.role, u.mustChangePassword ? 1 : 0, Date.now(), Date.now());
    const row = this.get(Number(info.lastInsertRowid));
    if (!row) throw new Error('user insert failed');
    return row;
  }

  async setPassword(id: number, password: unknown, opts: { mustChange?: boolean } = {}): Promise<void> {
    const pp = passwordProblem(password);
    if (pp) throw new UserInputError(pp);
    if (!this.get(id)) throw new UserInputError('No such user.', 'not-found');
    const hash = await hashPassword(password as string);
    this.db
      .prepare(
        'UPDATE users SET password_hash = ?, must_change_password = ?, password_changed_at = ? WHERE id = ?',
      )
      .run(hash, opts.mustChange ? 1 : 0, Date.now(), id);
  }

  update(id: number, fields: { role?: unknown; disabled?: unknown }): UserRow {
    const u = this.get(id);
    if (!u) throw new UserInputError('No such user.', 'not-found');
    const role = fields.role === undefined ? u.role : fields.role;
    if (!isRole(role)) throw new UserInputError('The role must be admin, operator or viewer.');
    if (fields.disabled !== undefined && typeof fields.disabled !== 'boolean')
      throw new UserInputError('disabled must be true or false.');
    const disabled = fields.disabled === undefined ? u.disabled === 1 : fields.disabled;
    const stillAdmin = role === 'admin' && !disabled;
    if (u.role === 'admin' && u.disabled === 0 && !stillAdmin && this.activeAdmins() <= 1)
      throw new UserInputError(
        'This is the last enabled admin; make another admin first.',
        'failed-precondition',
      );
    this.db.transaction(() => {
      this.db.prepare('UPDATE users SET role = ?, disabled = ? WHERE id = ?').run(role, disabled ? 1 : 0, id);
      // An admin is panel-wide: host-scoped grants make no sense for one (server/auth/scope.ts).
      if (role === 'admin') this.db.prepare('DELETE FROM user_grants WHERE user_id = ?').run(id);
    })();
    return this.get(id) as UserRow;
  }

  /**
   * Deletes a user and revokes the API tokens they created, in one transaction (the table would
   * otherwise forget the creator — ON DELETE SET NULL — and the token would pass for a CLI one).
   * Returns how many tokens were revoked.
   */
  delete(id: number): number {
    const u = this.get(id);
    if (!u) throw new UserInputError('No such user.', 'not-found');
    if (u.role === 'admin' && u.disabled === 0 && this.activeAdmins() <= 1)
      throw new UserInputError(
        'This is the last enabled admin; make another admin first.',
        'failed-precondition',
      );
    return this.db.transaction(() => {
      const revoked = this.db
        .prepare('UPDATE api_tokens SET revoked_at = ? WHERE created_by = ? AND revoked_at IS NULL')
        .run(Date.now(), id).changes;
      this.db.prepare('DELETE FROM users WHERE id = ?').run(id);
      return revoked;
    })();
  }

  private activeAdmins(): number {
    return (
      this.db.prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0").get() as {
        n: number;
      }
    ).n;
  }
}
