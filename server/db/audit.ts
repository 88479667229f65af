import type { Db } from './database.ts';

export type ActorKind = 'user' | 'token' | 'cli' | 'system';

export interface Actor {
  kind: ActorKind;
  /** Display name: username, token name, 'cli', 'system'. */
  name: string;
  role: 'admin' | 'operator' | 'viewer';
  userId?: number;
  tokenId?: number;
}

export interface AuditEntry {
  actor: Actor;
  hostId: string | null;
  action: string;
  params: unknown;
  ok: boolean;
  errorCode?: string | null;
  message?: string | null;
  durationMs?: number | null;
  /** The job (server/jobs/) this host call ran under. */
  jobId?: number | null;
}

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  actor_kind: ActorKind;
  host_id: string | null;
  action: string;
  params: string | null;
  ok: number;
  error_code: string | null;
  message: string | null;
  duration_ms: number | null;
  job_id: number | null;
}

export interface AuditQuery {
  hostId?: string;
  actor?: string;
  action?: string;
  jobId?: number;
  limit?: number;
  offset?: number;
}

/** The audit log: who did what, on which host, with which (redacted) params and result. */
export class AuditLog {
  private readonly observers: ((e: AuditEntry) => void)[] = [];

  constructor(private readonly db: Db) {}

  /** Calls `fn` after each entry is written (the panel's metrics count failures from it). */
  observe(fn: (e: AuditEntry) => void): void {
    this.observers.push(fn);
  }

  write(e: AuditEntry): void {
    this.db
      .prepare(
        `INSERT INTO audit_log (at, actor, actor_kind, host_id, action, params, ok, error_code, message, duration_ms, job_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        Date.now(),
        e.actor.name,
        e.actor.kind,
        e.hostId,
        e.action,
        e.params === undefined ? null : JSON.stringify(e.params),
        e.ok ? 1 : 0,
        e.errorCode ?? null,
        e.message ?? null,
        e.durationMs === undefined || e.durationMs === null ? null : Math.round(e.durationMs),
        e.jobId ?? null,
      );
    for (const fn of this.observers) fn(e);
  }

  query(q: AuditQuery = {}): { rows: AuditRow[]; total: number } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.hostId) {
      where.push('host_id = ?');
      args.push(q.hostId);
    }
    if (q.actor) {
      where.push('actor = ?');
      args.push(q.actor);
    }
    if (q.action) {
      where.push('action = ?');
      args.push(q.action);
    }
    if (q.jobId !== undefined) {
      where.push('job_id = ?');
      args.push(q.jobId);
    }
    const w = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM audit_log ${w}`).get(...args) as { n: number })
      .n;
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
    const offset = Math.max(q.offset ?? 0, 0);
    const rows = this.db
      .prepare(`SELECT * FROM audit_log ${w} ORDER BY id DESC LIMIT ? OFFSET ?`)
      .all(...args, limit, offset) as AuditRow[];
    return { rows, total };
  }
}
