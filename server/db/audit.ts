import type { Statement } from 'better-sqlite3';
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
  /** The host call's requestId (a mutation's), to resolve an unknown outcome later. */
  requestId?: string | null;
  /** 'unknown': the call timed out and may have acted (server/hosts/outcomes.ts resolves it). */
  outcome?: 'unknown' | null;
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
  request_id: string | null;
  outcome: string | null;
}

export interface AuditQuery {
  hostId?: string;
  actor?: string;
  action?: string;
  jobId?: number;
  /** Only entries about these hosts (a scoped actor's view; panel-wide entries left out). */
  withinHosts?: readonly string[];
  limit?: number;
  offset?: number;
}

/** The audit log: who did what, on which host, with which (redacted) params and result. */
export class AuditLog {
  private readonly observers: ((e: AuditEntry) => void)[] = [];
  /** Prepared on first use, then reused: a job writes one entry per host call. */
  private insert: Statement | null = null;

  constructor(private readonly db: Db) {}

  /** Calls `fn` after each entry is written (the panel's metrics count failures from it). */
  observe(fn: (e: AuditEntry) => void): void {
    this.observers.push(fn);
  }

  /** Adds an entry; returns its id. */
  write(e: AuditEntry): number {
    this.insert ??= this.db.prepare(
      `INSERT INTO audit_log (at, actor, actor_kind, host_id, action, params, ok, error_code, message, duration_ms, job_id, request_id, outcome)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const r = this.insert.run(
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
      e.requestId ?? null,
      e.outcome ?? null,
    );
    for (const fn of this.observers) fn(e);
    return Number(r.lastInsertRowid);
  }

  /** Entries whose outcome is still unknown (oldest first, bounded). */
  unresolved(
    limit = 1000,
  ): { id: number; at: number; hostId: string; requestId: string; action: string; actor: string }[] {
    return this.db
      .prepare(
        `SELECT id, at, host_id AS hostId, request_id AS requestId, action, actor FROM audit_log
         WHERE outcome = 'unknown' AND host_id IS NOT NULL AND request_id IS NOT NULL ORDER BY id LIMIT ?`,
      )
      .all(limit) as {
      id: number;
      at: number;
      hostId: string;
      requestId: string;
      action: string;
      actor: string;
    }[];
  }

  /** Records what became of a call whose outcome was unknown (the entry keeps its time). */
  resolve(id: number, r: { ok: boolean; errorCode: string | null; message: string | null }): void {
    this.db
      .prepare(
        `UPDATE audit_log SET ok = ?, error_code = ?, message = ?, outcome = NULL WHERE id = ? AND outcome = 'unknown'`,
      )
      .run(r.ok ? 1 : 0, r.errorCode, r.message, id);
  }

  /** Distinct values of a column (the audit page's filter lists), within hosts when given. */
  distinct(col: 'actor' | 'action' | 'host_id', withinHosts?: readonly string[]): string[] {
    const within = withinHosts ? ' AND host_id IN (SELECT value FROM json_each(?))' : '';
    return (
      this.db
        .prepare(
          `SELECT DISTINCT ${col} AS v FROM audit_log WHERE ${col} IS NOT NULL${within} ORDER BY v LIMIT 500`,
        )
        .all(...(withinHosts ? [JSON.stringify(withinHosts)] : [])) as { v: string }[]
    ).map((x) => x.v);
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
    if (q.withinHosts) {
      where.push('host_id IN (SELECT value FROM json_each(?))');
      args.push(JSON.stringify(q.withinHosts));
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
