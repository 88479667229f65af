import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/database.ts';
import type { Role } from './roles.ts';

export interface ApiTokenRow {
  id: number;
  name: string;
  prefix: string;
  role: Role;
  created_by: number | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  /** Label selector the token is limited to (null: its creator's whole scope). */
  selector: string | null;
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** API bearer tokens: shown once at creation, stored only as a SHA-256 hash. */
export class ApiTokens {
  constructor(private readonly db: Db) {}

  create(opts: {
    name: string;
    role: Role;
    createdBy: number | null;
    expiresAt: number | null;
    /** A validated label selector (shared/validate/labels.ts), or null/absent for no limit. */
    selector?: string | null;
  }): {
    token: string;
    row: ApiTokenRow;
  } {
    const token = `pio_${randomBytes(24).toString('base64url')}`;
    const info = this.db
      .prepare(
        'INSERT INTO api_tokens (name, token_hash, prefix, role, created_by, created_at, expires_at, selector) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        opts.name,
        hashToken(token),
        token.slice(0, 10),
        opts.role,
        opts.createdBy,
        Date.now(),
        opts.expiresAt,
        opts.selector ?? null,
      );
    const row = this.get(Number(info.lastInsertRowid));
    if (!row) throw new Error('token insert failed');
    return { token, row };
  }

  get(id: number): ApiTokenRow | null {
    return (
      (this.db
        .prepare(
          'SELECT id, name, prefix, role, created_by, created_at, expires_at, revoked_at, last_used_at, selector FROM api_tokens WHERE id = ?',
        )
        .get(id) as ApiTokenRow | undefined) ?? null
    );
  }

  list(): ApiTokenRow[] {
    return this.db
      .prepare(
        'SELECT id, name, prefix, role, created_by, created_at, expires_at, revoked_at, last_used_at, selector FROM api_tokens ORDER BY id',
      )
      .all() as ApiTokenRow[];
  }

  revoke(id: number): boolean {
    return (
      this.db
        .prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
        .run(Date.now(), id).changes > 0
    );
  }

  /** The live token matching a presented secret, or null (unknown, revoked or expired). */
  verify(token: string): ApiTokenRow | null {
    if (typeof token !== 'string' || token.length < 10 || token.length > 200) return null;
    const row = this.db
      .prepare(
        'SELECT id, name, prefix, role, created_by, created_at, expires_at, revoked_at, last_used_at, selector FROM api_tokens WHERE token_hash = ?',
      )
      .get(hashToken(token)) as ApiTokenRow | undefined;
    if (!row || row.revoked_at !== null) return null;
    if (row.expires_at !== null && row.expires_at <= Date.now()) return null;
    this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(Date.now(), row.id);
    return row;
  }
}
