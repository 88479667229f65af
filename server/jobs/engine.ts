import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { rpcEvents, type EventName, type Reply } from '../../shared/protocol/index.ts';
import { describeZodError } from '../../shared/protocol/describe.ts';
import { redactParams } from '../../shared/protocol/redact.ts';
import type { Actor, AuditLog } from '../db/audit.ts';
import type { Db } from '../db/database.ts';
import type { HostLabelsRepo } from '../db/labels.ts';
import type { PanelEvents } from '../events.ts';
import type { HostRegistry } from '../hosts/registry.ts';
import type { HostActions } from '../http/host-actions.ts';
import { PanelHttpError } from '../http/errors.ts';
import { checkJobRequest, requireEventRole } from './request.ts';
import { outcomeOf, recapLine, type HostState } from './outcome.ts';
import {
  isJobEvent,
  jobRequestSchema,
  parseAmount,
  thresholdPassed,
  windowSize,
  type JobSettings,
  type JobTarget,
} from './spec.ts';
import { eventLabel, jobOutcome, type JobMetrics } from '../metrics/panel-metrics.ts';
import { JobsStore, type JobHostRow, type JobRow } from './store.ts';
import { moduleOffer, resolveTarget, TargetError, targetSummary, type ResolvedTarget } from './target.ts';
import type { HostScopes } from '../auth/host-scope.ts';

export interface JobsDeps {
  db: Db;
  hosts: HostRegistry;
  labels: HostLabelsRepo;
  actions: HostActions;
  audit: AuditLog;
  events: PanelEvents;
  logger: Logger;
  /** Lease of a running job; renewed every third of it. */
  leaseMs: number;
  /** Job counts and durations (server/metrics/). */
  metrics?: JobMetrics;
  /** Host scopes: a scoped actor's targets are cut to their hosts (server/auth/host-scope.ts). */
  scopes?: HostScopes;
}

/** A job's live state in the panel that runs it. */
interface Run {
  cancel: boolean;
  done: Promise<void>;
}

/** After a start, queued jobs wait this long at most for hosts still connecting. */
const STARTUP_GRACE_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Fan-out jobs: one event on many hosts in a sliding window (server/jobs/, docs/jobs.md). A job
 * is validated once and stored queued; a panel claims it atomically (jobs.runner + lease), runs
 * its hosts through HostActions (roles, audit under the job, live events), and records each
 * host's outcome as it finishes. A panel that dies leaves a lease that runs out: the job is then
 * marked interrupted with what had run, and resuming it is an explicit action.
 */
export class Jobs {
  /** This panel process, as the runner of the jobs it claims. */
  readonly runnerId = randomUUID();
  readonly store: JobsStore;
  private readonly runs = new Map<number, Run>();
  /** Full params of jobs whose params hold secrets: only in this process's memory, never stored. */
  private readonly secretParams = new Map<number, Record<string, unknown>>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private startedAt = Date.now();

  constructor(private readonly d: JobsDeps) {
    this.store = new JobsStore(d.db);
  }

  /** Starts the lease/claim loop (and marks jobs of a dead panel interrupted). */
  start(): void {
    this.startedAt = Date.now();
    this.tick();
    this.timer = setInterval(() => this.tick(), Math.max(100, Math.min(1_000, this.d.leaseMs / 3)));
    this.timer.unref();
  }

  /** Stops starting hosts; jobs this panel runs are recorded as interrupted. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const r of this.runs.values()) r.cancel = true;
    const ids = this.store.interrupt({ runner: this.runnerId });
    for (const id of ids) this.emit(id);
    await Promise.resolve();
  }

  /** Which hosts a target names (the preview), cut to the actor's scope when given. */
  preview(target: unknown, event?: unknown, actor?: Actor): ResolvedTarget {
    return this.resolve(parseTarget(target), isJobEvent(event) ? event : undefined, actor);
  }

  /**
   * The target's hosts; for a scoped actor only those in scope, and the summary says how many
   * were left out. A host named in the target's lists but outside the scope is refused like an
   * unknown name (the actor must not learn it exists).
   */
  private resolve(target: JobTarget, event?: EventName, actor?: Actor): ResolvedTarget {
    const ids = actor && this.d.scopes ? this.d.scopes.visibleIds(actor) : null;
    const see = ids ? (id: string): boolean => ids.has(id) : null;
    try {
      if (see) {
        const rows = this.d.hosts.repo.list();
        for (const ref of [...(target.hosts ?? []), ...(target.exclude ?? [])]) {
          const lower = ref.toLowerCase();
          const h = rows.find((x) => x.id === ref) ?? rows.find((x) => x.name.toLowerCase() === lower);
          if (h && !see(h.id))
            throw new TargetError(
              `No host with the id or name ${JSON.stringify(ref.slice(0, 80))} (${target.hosts?.includes(ref) ? 'in the host list' : 'in the exclusions'}).`,
            );
        }
      }
      const all = resolveTarget(this.d.hosts, this.d.labels, target, event);
      if (!see) return all;
      const hosts = all.hosts.filter((h) => see(h.id));
      const left = all.hosts.length - hosts.length;
      return {
        hosts,
        outOfScope: left,
        summary:
          left === 0
            ? all.summary
            : `${targetSummary(hosts)} ${left} host${left === 1 ? '' : 's'} outside your scope left out.`,
      };
    } catch (e) {
      if (e instanceof TargetError) throw new PanelHttpError(400, 'invalid-argument', e.message);
      throw e;
    }
  }

  /** Whether the actor may see a job: whole-fleet actors all; scoped ones jobs on their hosts only. */
  visibleTo(actor: Actor, id: number): boolean {
    const ids = this.d.scopes?.visibleIds(actor) ?? null;
    return ids === null || this.store.within(id, [...ids]);
  }

  /** The list filter for an actor (undefined: every job). */
  listScope(actor: Actor): { withinHosts?: string[] } {
    const ids = this.d.scopes?.visibleIds(actor) ?? null;
    return ids === null ? {} : { withinHosts: [...ids] };
  }

  /**
   * Validates a job request (event, params against the event's schema, target, settings),
   * stores it queued and starts it when this panel can claim it. Throws PanelHttpError.
   */
  create(actor: Actor, input: unknown): JobRow {
    const c = checkJobRequest(actor, input);
    const resolved = this.resolve(c.target, c.event, actor);
    if (resolved.hosts.length === 0)
      throw new PanelHttpError(
        400,
        'invalid-argument',
        resolved.outOfScope ? resolved.summary : 'No host matches the target.',
      );
    const def = rpcEvents[c.event];
    const id = this.store.create({
      createdBy: actor.name,
      actor,
      event: c.event,
      params: redactParams(c.event, c.params),
      hasSecrets: c.hasSecrets,
      target: c.target,
      settings: c.settings,
      dryRun: c.dryRun,
      hosts: resolved.hosts.map((h) => ({
        id: h.id,
        name: h.name,
        requestId: def.mutation ? randomUUID() : null,
      })),
    });
    if (c.hasSecrets) this.secretParams.set(id, c.params);
    this.d.audit.write({
      actor,
      hostId: null,
      action: 'job start',
      params: {
        job: id,
        event: c.event,
        params: redactParams(c.event, c.params),
        target: c.target,
        ...c.settings,
        dryRun: c.dryRun,
      },
      ok: true,
      message: resolved.summary,
      jobId: id,
    });
    this.tryClaim(id);
    return this.existing(id);
  }

  /** Cancel: no new host starts; calls in flight finish and are recorded. */
  cancel(actor: Actor, id: number): JobRow {
    const j = this.existing(id, actor);
    this.requireRole(actor, j.event as EventName);
    if (j.state === 'queued' || j.state === 'interrupted') {
      this.store.cancelIdle(id);
      this.store.setMessage(id, `Cancelled by ${actor.name}. ${recapLine(this.store.counts(id))}`);
    } else if (j.state === 'running') {
      this.store.requestCancel(id);
      const run = this.runs.get(id);
      if (run) run.cancel = true;
    } else
      throw new PanelHttpError(
        409,
        'failed-precondition',
        `Job ${id} is ${j.state}; only a queued or running job can be cancelled.`,
      );
    this.d.audit.write({
      actor,
      hostId: null,
      action: 'job cancel',
      params: { job: id },
      ok: true,
      jobId: id,
    });
    this.emit(id);
    return this.existing(id);
  }

  /** Retry: runs again the hosts that failed, were unreachable or timed out (outcome unknown). */
  retry(actor: Actor, id: number): JobRow {
    return this.requeue(actor, id, 'job retry', { states: ['failed', 'unreachable', 'timeout'] });
  }

  /** Resume: runs the hosts that never started (interrupted, or skipped by threshold or cancel). */
  resume(actor: Actor, id: number): JobRow {
    return this.requeue(actor, id, 'job resume', {
      states: ['pending'],
      skipReasons: ['threshold', 'cancelled'],
    });
  }

  get(id: number): JobRow | null {
    return this.store.get(id);
  }

  /** Resolves when the job is no longer queued or running (for the CLI and tests), or rejects after timeoutMs. */
  async waitFinished(id: number, timeoutMs = 60_000): Promise<JobRow> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const j = this.existing(id);
      if (j.state !== 'queued' && j.state !== 'running') return j;
      if (Date.now() > until) throw new Error(`job ${id} still ${j.state} after ${timeoutMs} ms`);
      await (this.runs.get(id)?.done ?? sleep(50));
    }
  }

  // --- internals --------------------------------------------------------------------------

  private requireRole(actor: Actor, event: EventName): void {
    requireEventRole(actor, event);
  }

  private existing(id: number, actor?: Actor): JobRow {
    const j = this.store.get(id);
    if (!j || (actor && !this.visibleTo(actor, id)))
      throw new PanelHttpError(404, 'not-found', `No job ${id}.`);
    return j;
  }

  private requeue(
    actor: Actor,
    id: number,
    action: string,
    select: { states: HostState[]; skipReasons?: string[] },
  ): JobRow {
    const j = this.existing(id, actor);
    this.requireRole(actor, j.event as EventName);
    if (j.state === 'queued' || j.state === 'running')
      throw new PanelHttpError(409, 'failed-precondition', `Job ${id} is ${j.state}; wait until it ends.`);
    if (j.dry_run === 1)
      throw new PanelHttpError(
        409,
        'failed-precondition',
        `Job ${id} is a dry run; start a real job instead.`,
      );
    if (j.has_secrets === 1 && !this.secretParams.has(id))
      throw new PanelHttpError(
        409,
        'failed-precondition',
        `Job ${id} had a secret parameter, which the panel never stores; start a new job with it.`,
      );
    const n = this.store.requeue(id, actor, select, () => randomUUID());
    if (n <= 0)
      throw new PanelHttpError(
        409,
        'failed-precondition',
        `Job ${id} has no host to ${action === 'job retry' ? 'retry' : 'resume'}.`,
      );
    this.d.audit.write({ actor, hostId: null, action, params: { job: id, hosts: n }, ok: true, jobId: id });
    this.tryClaim(id);
    return this.existing(id);
  }

  private tick(): void {
    if (this.closed) return;
    try {
      if (this.runs.size > 0) this.store.renew(this.runnerId, this.d.leaseMs);
      for (const id of this.store.interrupt({})) {
        this.d.logger.warn({ job: id }, 'job interrupted: its panel stopped');
        this.emit(id);
      }
      // Jobs queued while no panel ran (CLI, resume) wait until the hosts had a chance to connect.
      const connecting = this.d.hosts.manager.statuses().some((s) => s.state === 'connecting');
      if (connecting && Date.now() - this.startedAt < STARTUP_GRACE_MS) return;
      for (const id of this.store.queuedIds()) this.tryClaim(id);
    } catch (e) {
      this.d.logger.error({ err: e }, 'jobs tick failed');
    }
  }

  private tryClaim(id: number): void {
    if (this.closed || this.runs.has(id)) return;
    if (!this.store.claim(id, this.runnerId, this.d.leaseMs)) return;
    const run: Run = { cancel: false, done: Promise.resolve() };
    this.runs.set(id, run);
    const recorded = this.d.metrics?.started(eventLabel(this.store.get(id)?.event));
    run.done = this.execute(id, run)
      .catch((e: unknown) => {
        this.d.logger.error({ err: e, job: id }, 'job failed');
        if (!this.closed)
          this.store.finishJob(id, this.runnerId, 'stopped', `Internal error: ${(e as Error).message}`);
      })
      .finally(() => {
        // A panel that is closing has recorded this job as interrupted (and may have closed the database).
        if (this.closed) {
          recorded?.('interrupted');
          this.runs.delete(id);
          return;
        }
        recorded?.(jobOutcome(this.store.get(id)?.state, this.store.counts(id)));
        this.runs.delete(id);
        this.emit(id);
      });
    this.emit(id);
  }

  private emit(jobId: number, hostId?: string): void {
    this.d.events.emit('job', { jobId, ...(hostId === undefined ? {} : { hostId }) });
  }

  private async execute(id: number, run: Run): Promise<void> {
    const job = this.existing(id);
    const event = job.event as EventName;
    const def = rpcEvents[event];
    const actor = JSON.parse(job.actor) as Actor;
    const settings = JSON.parse(job.settings) as JobSettings;
    const params = this.secretParams.get(id) ?? (JSON.parse(job.params) as Record<string, unknown>);
    if (job.resolved === 0) {
      // Queued by the CLI: this panel knows each host's hello, so it resolves the target now.
      let resolved: ResolvedTarget;
      try {
        resolved = resolveTarget(this.d.hosts, this.d.labels, JSON.parse(job.target) as JobTarget, event);
      } catch (e) {
        if (!(e instanceof TargetError)) throw e;
        this.store.finishJob(id, this.runnerId, 'stopped', `Not started: ${e.message}`);
        return;
      }
      this.store.resolve(
        id,
        resolved.hosts.map((h) => ({
          id: h.id,
          name: h.name,
          requestId: def.mutation ? randomUUID() : null,
        })),
      );
      if (resolved.hosts.length === 0) {
        this.store.finishJob(id, this.runnerId, 'done', 'No host matches the target.');
        return;
      }
      this.d.audit.write({
        actor,
        hostId: null,
        action: 'job start',
        params: { job: id, event },
        ok: true,
        message: resolved.summary,
        jobId: id,
      });
    }
    const hosts = this.store.hosts(id, 'pending');
    const total = hosts.length;
    const window = windowSize(parseAmount(settings.window), total);
    const threshold = settings.failThreshold === null ? null : parseAmount(settings.failThreshold);
    let inFlight = 0;
    let bad = 0;
    let stopReason: 'threshold' | 'cancelled' | null = null;
    const waiters: (() => void)[] = [];
    const slotFreed = (): Promise<void> => new Promise((r) => waiters.push(r));
    const calls: Promise<void>[] = [];

    const runHost = async (h: JobHostRow): Promise<void> => {
      this.store.markHostRunning(id, h.seq);
      this.emit(id, h.host_id);
      let state: HostState;
      let errorCode: string | null = null;
      let message: string | null = null;
      let data: unknown;
      const offer = moduleOffer(this.d.hosts, h.host_id, def.module);
      const status = this.d.hosts.manager.status(h.host_id);
      if (job.dry_run === 1 || offer.capable === false) {
        if (offer.capable === false) {
          state = 'skipped';
          errorCode = 'capability';
          message = `The agent does not offer ${def.module}: ${offer.reason ?? 'not available'}.`;
        } else if (status?.state !== 'online') {
          state = 'unreachable';
          errorCode = 'unavailable';
          message = `Host is ${status?.state ?? 'not connected'}${status?.lastError ? `: ${status.lastError}` : ''}.`;
        } else {
          state = 'skipped';
          errorCode = 'dry-run';
          message = `Dry run: online and offers ${def.module}; would run "${event}".`;
        }
      } else {
        const body = def.mutation && h.request_id ? { ...params, requestId: h.request_id } : params;
        let reply: Reply<unknown>;
        try {
          reply = await this.d.actions.call(actor, h.host_id, event, body, {
            jobId: id,
            ...(settings.deadlineMs === null ? {} : { timeoutMs: settings.deadlineMs }),
          });
        } catch (e) {
          const err = e instanceof PanelHttpError ? e : null;
          reply = {
            ok: false,
            error: {
              code: err?.code === 'not-found' ? 'not-found' : 'internal',
              message: err?.message ?? (e as Error).message,
            },
          };
          if (err?.code === 'permission-denied')
            reply = { ok: false, error: { code: 'failed-precondition', message: err.message } };
        }
        state = outcomeOf(reply);
        if (reply.ok) data = reply.data;
        else {
          errorCode = reply.error.code;
          message = reply.error.message;
        }
      }
      if (this.closed) return; // the panel is stopping: close() recorded this host as unknown
      this.store.finishHost(id, h.seq, { state, errorCode, message, data });
      if (state === 'failed' || state === 'unreachable' || state === 'timeout') bad++;
      this.emit(id, h.host_id);
    };

    let started = 0;
    // Another panel's cancel arrives through the database: looked at no more than every 100 ms.
    let cancelCheckedAt = 0;
    const cancelled = (): boolean => {
      if (run.cancel) return true;
      const now = Date.now();
      if (now - cancelCheckedAt < 100) return false;
      cancelCheckedAt = now;
      return this.store.cancelRequested(id);
    };
    for (const h of hosts) {
      while (inFlight >= window) await slotFreed();
      if (this.closed) return;
      if (cancelled()) {
        stopReason = 'cancelled';
        break;
      }
      if (threshold && thresholdPassed(threshold, bad, total)) {
        stopReason = 'threshold';
        break;
      }
      if (settings.pauseMs > 0 && started > 0) {
        await sleep(settings.pauseMs);
        if (this.closed) return;
        if (cancelled()) {
          stopReason = 'cancelled';
          break;
        }
      }
      started++;
      inFlight++;
      calls.push(
        runHost(h).finally(() => {
          inFlight--;
          waiters.shift()?.();
        }),
      );
    }
    await Promise.allSettled(calls);
    if (this.closed) return;
    if (stopReason === 'threshold')
      this.store.skipPending(
        id,
        'threshold',
        `Not started: failed + unreachable + timed-out hosts passed the threshold (${settings.failThreshold ?? ''}).`,
      );
    else if (stopReason === 'cancelled')
      this.store.skipPending(id, 'cancelled', 'Not started: the job was cancelled.');
    const counts = this.store.counts(id);
    const recap = recapLine(counts);
    const state = stopReason === 'cancelled' ? 'cancelled' : stopReason === 'threshold' ? 'stopped' : 'done';
    const why =
      stopReason === 'threshold'
        ? `Stopped: ${bad} host${bad === 1 ? '' : 's'} failed, unreachable or timed out (threshold ${settings.failThreshold ?? ''}). `
        : stopReason === 'cancelled'
          ? 'Cancelled. '
          : '';
    this.store.finishJob(id, this.runnerId, state, `${why}${recap}`);
    this.d.audit.write({
      actor,
      hostId: null,
      action: 'job end',
      params: { job: id, state },
      ok: state === 'done' && counts.failed + counts.unreachable + counts.timeout === 0,
      message: recap,
      jobId: id,
    });
  }
}

/** Parses a target given as JSON (API, dashboard), refusing bad input with a sentence. */
export function parseTarget(input: unknown): JobTarget {
  const r = jobRequestSchema.shape.target.safeParse(input);
  if (!r.success) throw new PanelHttpError(400, 'invalid-argument', `target: ${describeZodError(r.error)}`);
  return r.data;
}
