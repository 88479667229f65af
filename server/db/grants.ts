import type { Db } from './database.ts';
import type { Grant } from '../auth/scope.ts';
import type { Role } from '../auth/roles.ts';

/**
 * The user_grants table: a user's roles scoped to label selectors (server/auth/scope.ts). A user
 * without rows has their role on every host; with rows, only where a grant matches.
 */
export class GrantsRepo {
  constructor(private readonly db: Db) {}

  of(userId: number): Grant[] {
    return this.db
      .prepare('SELECT role, selector FROM user_grants WHERE user_id = ? ORDER BY id')
      .all(userId) as { role: Role; selector: string | null }[];
  }

  /** Every user's grants (users without grants are absent). */
  all(): Map<number, Grant[]> {
    const rows = this.db
      .prepare('SELECT user_id, role, selector FROM user_grants ORDER BY user_id, id')
      .all() as { user_id: number; role: Role; selector: string | null }[];
    const out = new Map<number, Grant[]>();
    for (const r of rows) {
      let l = out.get(r.user_id);
      if (!l) out.set(r.user_id, (l = []));
      l.push({ role: r.role, selector: r.selector });
    }
    return out;
  }

  /** Replaces a user's grants and sets their role to `role`, in one transaction. */
  set(userId: number, grants: readonly Grant[], role: Role): void {
    const del = this.db.prepare('DELETE FROM user_grants WHERE user_id = ?');
    const ins = this.db.prepare('INSERT INTO user_grants (user_id, role, selector) VALUES (?, ?, ?)');
    this.db.transaction(() => {
      del.run(userId);
      for (const g of grants) ins.run(userId, g.role, g.selector);
      this.db.prepare('UPDATE users SET role = ? WHERE id = ?').run(role, userId);
    })();
  }

  clear(userId: number): void {
    this.db.prepare('DELETE FROM user_grants WHERE user_id = ?').run(userId);
  }
}
