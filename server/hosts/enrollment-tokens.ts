import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/database.ts';

export const TOKEN_TTL_MS = 60 * 60_000;
const TOKEN_PREFIX = 'pjt_';

export interface JoinTokenRow {
  id: number;
  host_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * Single-use join tokens (design §3): only the SHA-256 of a token is stored; it expires after
 * one hour, can be revoked, and issuing a new one for a host revokes the previous ones.
 */
export class JoinTokens {
  constructor(
    private readonly db: Db,
    private readonly ttlMs = TOKEN_TTL_MS,
  ) {}

  /** Creates a token for a host (revoking its unused ones). The token is returned once. */
  issue(hostId: string, now = Date.now()): { token: string; expiresAt: number } {
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const expiresAt = now + this.ttlMs;
    this.db.transaction(() => {
      this.revokeForHost(hostId, now);
      this.db
        .prepare('INSERT INTO join_tokens (host_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?)')
        .run(hostId, hashToken(token), now, expiresAt);
    })();
    return { token, expiresAt };
  }

  /** Revokes every unused token of a host; returns how many. */
  revokeForHost(hostId: string, now = Date.now()): number {
    return this.db
      .prepare(
        'UPDATE join_tokens SET revoked_at = ? WHERE host_id = ? AND used_at IS NULL AND revoked_at IS NULL',
      )
      .run(now, hostId).changes;
  }

  find(token: string): JoinTokenRow | null {
    return (
      (this.db.prepare('SELECT * FROM join_tokens WHERE token_hash = ?').get(hashToken(token)) as
        JoinTokenRow | undefined) ?? null
    );
  }

  /** Marks a token used if it still is usable; false when another request won the race. */
  claim(id: number, now = Date.now()): boolean {
    return (
      this.db
        .prepare(
          'UPDATE join_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?',
        )
        .run(now, id, now).changes === 1
    );
  }

  /** The host's token that can still be used, if any (for status displays). */
  pending(hostId: string, now = Date.now()): { createdAt: number; expiresAt: number } | null {
    const r = this.db
      .prepare(
        'SELECT created_at, expires_at FROM join_tokens WHERE host_id = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ? ORDER BY id DESC LIMIT 1',
      )
      .get(hostId, now) as { created_at: number; expires_at: number } | undefined;
    return r ? { createdAt: r.created_at, expiresAt: r.expires_at } : null;
  }
}
