import type { Statement } from 'better-sqlite3';
import type { Db } from '../db/database.ts';
import type { Actor } from '../db/audit.ts';
import { emptyCounts, type Counts, type HostState } from './outcome.ts';
import type { JobSettings, JobTarget } from './spec.ts';

export type JobState = 'queued' | 'running' | 'done' | 'stopped' | 'cancelled' | 'interrupted';

export interface JobRow {
  id: number;
  created_at: number;
  created_by: string;
  actor: string;
  event: string;
  params: string;
  has_secrets: number;
  target: string;
  settings: string;
  dry_run: number;
  resolved: number;
  state: JobState;
  cancel_requested: number;
  runner: string | null;
  lease_until: number | null;
  started_at: number | null;
  finished_at: number | null;
  message: string | null;
}

export interface JobHostRow {
  job_id: number;
  seq: number;
  host_id: string;
  host_name: string;
  state: HostState;
  attempts: number;
  request_id: string | null;
  error_code: string | null;
  message: string | null;
  data: string | null;
  started_at: number | null;
  finished_at: number | null;
}

export interface JobListQuery {
  state?: JobState;
  /** Only jobs whose every host is one of these (a scoped actor's hosts; docs/security.md). */
  withinHosts?: readonly string[];
  limit?: number;
  offset?: number;
}

/** SQL condition on `jobs`: resolved, and no host outside the JSON array parameter. */
const WITHIN_HOSTS = `resolved = 1 AND NOT EXISTS (SELECT 1 FROM job_hosts jh WHERE jh.job_id = jobs.id
  AND jh.host_id NOT IN (SELECT value FROM json_each(?)))`;

/** Reply data kept per host is capped (a list of 10,000 websites stays on the host). */
const MAX_DATA_CHARS = 16_384;

/**
 * The jobs and job_hosts tables. Every state change is one statement (or one transaction), so a
 * panel killed at any instant leaves each host either not started, running (outcome unknown) or
 * finished with its reply; claims and leases are single conditional UPDATEs, so with several
 * panels sharing the database exactly one of them runs a job.
 */
export class JobsStore {
  /** Statements of the per-host hot path, prepared once (preparing costs more than running them). */
  private readonly hot: { running: Statement; finish: Statement; cancel: Statement };

  constructor(private readonly db: Db) {
    this.hot = {
      running: db.prepare(
        `UPDATE job_hosts SET state = 'running', attempts = attempts + 1, started_at = ?, finished_at = NULL,
           error_code = NULL, message = NULL, data = NULL WHERE job_id = ? AND seq = ?`,
      ),
      finish: db.prepare(
        'UPDATE job_hosts SET state = ?, error_code = ?, message = ?, data = ?, finished_at = ? WHERE job_id = ? AND seq = ?',
      ),
      cancel: db.prepare('SELECT cancel_requested AS c FROM jobs WHERE id = ?'),
    };
  }

  create(j: {
    createdBy: string;
    actor: Actor;
    event: string;
    params: unknown;
    hasSecrets: boolean;
    target: JobTarget;
    settings: JobSettings;
    dryRun: boolean;
    /** null: resolved by the panel that claims the job (CLI). */
    hosts: { id: string; name: string; requestId: string | null }[] | null;
  }): number {
    const insJob = this.db.prepare(
      `INSERT INTO jobs (created_at, created_by, actor, event, params, has_secrets, target, settings, dry_run, resolved, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued')`,
    );
    const insHost = this.db.prepare(
      `INSERT INTO job_hosts (job_id, seq, host_id, host_name, state, request_id) VALUES (?, ?, ?, ?, 'pending', ?)`,
    );
    return this.db.transaction(() => {
      const id = Number(
        insJob.run(
          Date.now(),
          j.createdBy,
          JSON.stringify(j.actor),
          j.event,
          JSON.stringify(j.params),
          j.hasSecrets ? 1 : 0,
          JSON.stringify(j.target),
          JSON.stringify(j.settings),
          j.dryRun ? 1 : 0,
          j.hosts === null ? 0 : 1,
        ).lastInsertRowid,
      );
      (j.hosts ?? []).forEach((h, i) => insHost.run(id, i, h.id, h.name, h.requestId));
      return id;
    })();
  }

  /** Stores the hosts of a job queued unresolved (see create). */
  resolve(id: number, hosts: { id: string; name: string; requestId: string | null }[]): void {
    const insHost = this.db.prepare(
      `INSERT INTO job_hosts (job_id, seq, host_id, host_name, state, request_id) VALUES (?, ?, ?, ?, 'pending', ?)`,
    );
    this.db.transaction(() => {
      if (this.db.prepare('UPDATE jobs SET resolved = 1 WHERE id = ? AND resolved = 0').run(id).changes !== 1)
        return;
      hosts.forEach((h, i) => insHost.run(id, i, h.id, h.name, h.requestId));
    })();
  }

  get(id: number): JobRow | null {
    return (this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined) ?? null;
  }

  list(q: JobListQuery = {}): { rows: JobRow[]; total: number } {
    const conds: string[] = [];
    const args: (string | number)[] = [];
    if (q.state) {
      conds.push('state = ?');
      args.push(q.state);
    }
    if (q.withinHosts) {
      conds.push(WITHIN_HOSTS);
      args.push(JSON.stringify(q.withinHosts));
    }
    const where = conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : '';
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs ${where}`).get(...args) as { n: number })
      .n;
    const rows = this.db
      .prepare(`SELECT * FROM jobs ${where} ORDER BY id DESC LIMIT ? OFFSET ?`)
      .all(...args, Math.min(Math.max(q.limit ?? 50, 1), 500), Math.max(q.offset ?? 0, 0)) as JobRow[];
    return { rows, total };
  }

  /** Whether every host of a job is one of `hostIds` (and the job's target is resolved). */
  within(jobId: number, hostIds: readonly string[]): boolean {
    return (
      this.db
        .prepare(`SELECT 1 AS ok FROM jobs WHERE id = ? AND ${WITHIN_HOSTS}`)
        .get(jobId, JSON.stringify(hostIds)) !== undefined
    );
  }

  hosts(jobId: number, state?: HostState): JobHostRow[] {
    return (
      state
        ? this.db
            .prepare('SELECT * FROM job_hosts WHERE job_id = ? AND state = ? ORDER BY seq')
            .all(jobId, state)
        : this.db.prepare('SELECT * FROM job_hosts WHERE job_id = ? ORDER BY seq').all(jobId)
    ) as JobHostRow[];
  }

  counts(jobId: number): Counts {
    const c = emptyCounts();
    const rows = this.db
      .prepare('SELECT state, COUNT(*) AS n FROM job_hosts WHERE job_id = ? GROUP BY state')
      .all(jobId) as { state: HostState; n: number }[];
    for (const r of rows) c[r.state] = r.n;
    return c;
  }

  /** Claims a queued job for `runner` (exactly one panel wins). */
  claim(id: number, runner: string, leaseMs: number): boolean {
    const now = Date.now();
    return (
      this.db
        .prepare(
          `UPDATE jobs SET state = 'running', runner = ?, lease_until = ?, started_at = COALESCE(started_at, ?), finished_at = NULL, message = NULL
           WHERE id = ? AND state = 'queued'`,
        )
        .run(runner, now + leaseMs, now, id).changes === 1
    );
  }

  queuedIds(): number[] {
    return (
      this.db.prepare("SELECT id FROM jobs WHERE state = 'queued' ORDER BY id").all() as { id: number }[]
    ).map((r) => r.id);
  }

  /** Renews this runner's leases; returns how many jobs it still holds. */
  renew(runner: string, leaseMs: number): number {
    return this.db
      .prepare("UPDATE jobs SET lease_until = ? WHERE runner = ? AND state = 'running'")
      .run(Date.now() + leaseMs, runner).changes;
  }

  cancelRequested(id: number): boolean {
    return (this.hot.cancel.get(id) as { c: number } | undefined)?.c === 1;
  }

  requestCancel(id: number): void {
    this.db.prepare('UPDATE jobs SET cancel_requested = 1 WHERE id = ?').run(id);
  }

  /**
   * Marks jobs as interrupted whose runner is gone (lease expired), or every job of `runner`
   * (this panel stopping): hosts that were in flight get outcome unknown, pending hosts stay
   * pending for an explicit resume. Returns the ids.
   */
  interrupt(opts: { runner?: string; now?: number }): number[] {
    const now = opts.now ?? Date.now();
    const rows = (
      opts.runner
        ? this.db.prepare("SELECT id FROM jobs WHERE state = 'running' AND runner = ?").all(opts.runner)
        : this.db.prepare("SELECT id FROM jobs WHERE state = 'running' AND lease_until < ?").all(now)
    ) as { id: number }[];
    const ids: number[] = [];
    for (const { id } of rows) {
      const done = this.db.transaction(() => {
        const guard = opts.runner
          ? this.db
              .prepare(
                "UPDATE jobs SET state = 'interrupted' WHERE id = ? AND state = 'running' AND runner = ?",
              )
              .run(id, opts.runner)
          : this.db
              .prepare(
                "UPDATE jobs SET state = 'interrupted' WHERE id = ? AND state = 'running' AND lease_until < ?",
              )
              .run(id, now);
        if (guard.changes !== 1) return false;
        this.db
          .prepare(
            `UPDATE job_hosts SET state = 'timeout', error_code = 'interrupted', finished_at = ?,
               message = 'The panel stopped during this call: outcome unknown.'
             WHERE job_id = ? AND state = 'running'`,
          )
          .run(now, id);
        const c = this.counts(id);
        const total = Object.values(c).reduce((a, b) => a + b, 0);
        this.db
          .prepare(
            'UPDATE jobs SET runner = NULL, lease_until = NULL, finished_at = ?, message = ? WHERE id = ?',
          )
          .run(
            now,
            `Interrupted: the panel running this job stopped after ${total - c.pending} of ${total} hosts had started; ${c.pending} not started (resume runs them).`,
            id,
          );
        return true;
      })();
      if (done) ids.push(id);
    }
    return ids;
  }

  markHostRunning(jobId: number, seq: number): void {
    this.hot.running.run(Date.now(), jobId, seq);
  }

  finishHost(
    jobId: number,
    seq: number,
    r: { state: HostState; errorCode: string | null; message: string | null; data: unknown },
  ): void {
    let data: string | null = r.data === undefined ? null : JSON.stringify(r.data);
    if (data !== null && data.length > MAX_DATA_CHARS)
      data = JSON.stringify({ truncated: true, chars: data.length });
    this.hot.finish.run(r.state, r.errorCode, r.message, data, Date.now(), jobId, seq);
  }

  /** Hosts not started when a job stops starting (threshold, cancel) are skipped with the reason. */
  skipPending(jobId: number, reason: string, message: string): void {
    this.db
      .prepare(
        "UPDATE job_hosts SET state = 'skipped', error_code = ?, message = ?, finished_at = ? WHERE job_id = ? AND state = 'pending'",
      )
      .run(reason, message, Date.now(), jobId);
  }

  finishJob(id: number, runner: string | null, state: JobState, message: string): boolean {
    return (
      this.db
        .prepare(
          `UPDATE jobs SET state = ?, message = ?, finished_at = ?, runner = NULL, lease_until = NULL
           WHERE id = ? AND (runner IS ? OR state IN ('queued', 'interrupted'))`,
        )
        .run(state, message, Date.now(), id, runner).changes === 1
    );
  }

  /**
   * Puts a finished job back in the queue with `states` of hosts pending again (retry: failed,
   * unreachable, timeout; resume: never started). `freshIds` get a new requestId (a failed
   * mutation must be sent anew; an unknown outcome keeps its id so the agent answers from its
   * request cache instead of acting twice). Returns how many hosts were re-queued.
   */
  requeue(
    id: number,
    actor: Actor,
    select: { states: HostState[]; skipReasons?: string[] },
    newRequestId: (() => string) | null,
  ): number {
    return this.db.transaction(() => {
      const j = this.get(id);
      if (!j || j.state === 'queued' || j.state === 'running') return -1;
      const rows = this.hosts(id).filter(
        (h) =>
          select.states.includes(h.state) ||
          (h.state === 'skipped' && (select.skipReasons ?? []).includes(h.error_code ?? '')),
      );
      const upd = this.db.prepare(
        `UPDATE job_hosts SET state = 'pending', request_id = ?, error_code = NULL, message = NULL, data = NULL,
           started_at = NULL, finished_at = NULL WHERE job_id = ? AND seq = ?`,
      );
      for (const h of rows)
        upd.run(
          h.state === 'failed' && newRequestId && h.request_id ? newRequestId() : h.request_id,
          id,
          h.seq,
        );
      if (rows.length > 0)
        this.db
          .prepare(
            "UPDATE jobs SET state = 'queued', cancel_requested = 0, actor = ?, message = NULL, finished_at = NULL WHERE id = ?",
          )
          .run(JSON.stringify(actor), id);
      return rows.length;
    })();
  }

  /** Cancels a job nobody runs (queued or interrupted) at once. */
  cancelIdle(id: number): boolean {
    return this.db.transaction(() => {
      const r = this.db
        .prepare(
          "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ? WHERE id = ? AND state IN ('queued', 'interrupted')",
        )
        .run(Date.now(), id);
      if (r.changes !== 1) return false;
      this.skipPending(id, 'cancelled', 'Cancelled before this host started.');
      return true;
    })();
  }

  setMessage(id: number, message: string): void {
    this.db.prepare('UPDATE jobs SET message = ? WHERE id = ?').run(message, id);
  }
}
