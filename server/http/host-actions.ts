import {
  rpcEvents,
  type EventName,
  type Reply,
  type ReplyData,
  type RequestIn,
} from '../../shared/protocol/index.ts';
import { auditParams } from '../../shared/protocol/redact.ts';
import { describeZodError } from '../../shared/protocol/describe.ts';
import type { Actor, AuditLog } from '../db/audit.ts';
import type { PanelEvents } from '../events.ts';
import type { HostRegistry } from '../hosts/registry.ts';
import { roleAtLeast, type Role } from '../auth/roles.ts';
import { PanelHttpError } from './errors.ts';
import { takeProgressId } from './progress.ts';
import { randomUUID } from 'node:crypto';
import { noCallObserver, type CallObserver } from '../metrics/calls.ts';
import { outcomeOfError } from '../api/reply.ts';

/**
 * The one way the dashboard and the API act on a host: checks the actor's role (viewer reads,
 * operator mutates), calls the agent, writes every mutation to the audit log (params redacted)
 * and announces it to live dashboards.
 */
export class HostActions {
  constructor(
    private readonly registry: HostRegistry,
    private readonly audit: AuditLog,
    private readonly events: PanelEvents,
    /** Metrics and the call log (server/metrics/calls.ts), passed in by server/main.ts. */
    private readonly observer: CallObserver = noCallObserver,
    /** Host scopes (server/auth/host-scope.ts): every call is cut to the actor's hosts. */
    private readonly scopes: { roleOn(actor: Actor, hostId: string): Role | null } | null = null,
  ) {}

  async call<E extends EventName>(
    actor: Actor,
    hostId: string,
    event: E,
    params: RequestIn<E>,
    opts: { timeoutMs?: number; jobId?: number } = {},
  ): Promise<Reply<ReplyData<E>>> {
    const def = rpcEvents[event];
    const needed = def.mutation ? 'operator' : 'viewer';
    if (!roleAtLeast(actor.role, needed))
      throw new PanelHttpError(403, 'permission-denied', `Your role (${actor.role}) cannot do "${event}".`);
    if (!this.registry.repo.get(hostId))
      throw new PanelHttpError(404, 'not-found', `No host with id ${hostId}.`);
    // A host outside the actor's scope is answered like an unknown one: it is invisible to them.
    // Every path (pages, API, jobs) ends here, so this holds even where a route forgot to check.
    if (this.scopes) {
      const onHost = this.scopes.roleOn(actor, hostId);
      if (onHost === null) throw new PanelHttpError(404, 'not-found', `No host with id ${hostId}.`);
      if (!roleAtLeast(onHost, needed))
        throw new PanelHttpError(
          403,
          'permission-denied',
          `Your role on this host (${onHost}) cannot do "${event}".`,
        );
    }
    const started = performance.now();
    // A dashboard form with live progress: its id becomes the call's requestId (server/http/progress.ts).
    const progressId =
      def.mutation && (params as { requestId?: unknown }).requestId === undefined
        ? takeProgressId()
        : undefined;
    if (progressId !== undefined) params = { ...params, requestId: progressId };
    // The audit's params are what the caller sent; an id the panel makes up below lives only in
    // the entry's request_id column.
    const asSent = params;
    // Every mutation has a requestId the audit keeps: an unknown outcome is resolved by it.
    if (def.mutation && (params as { requestId?: unknown }).requestId === undefined)
      params = { ...params, requestId: randomUUID() };
    // The panel checks the request against the same contract schema as the agent (shared/protocol,
    // shared/validate): bad input is refused here, with the agent's wording, and never sent.
    const checked = def.request.safeParse(params);
    // Every call carries an id (a mutation's requestId, or a fresh one), logged on both sides.
    const callId = (params as { requestId?: string }).requestId ?? randomUUID();
    const done = this.observer.start(hostId, event, callId);
    const reply: Reply<ReplyData<E>> = checked.success
      ? await this.registry.manager.call(
          hostId,
          event,
          { ...params, requestId: callId },
          opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs },
        )
      : { ok: false, error: { code: 'invalid-argument', message: describeZodError(checked.error) } };
    done(reply);
    // A job's host calls are all recorded, reads included, under the job (server/jobs/).
    if (def.mutation || opts.jobId !== undefined) {
      const durationMs = performance.now() - started;
      const unknown = def.mutation && !reply.ok && outcomeOfError(reply.error) === 'unknown';
      const requestId = (params as { requestId?: unknown }).requestId;
      this.audit.write({
        ...(typeof requestId === 'string' ? { requestId } : {}),
        ...(unknown ? { outcome: 'unknown' as const } : {}),
        actor,
        hostId,
        action: event,
        params: auditParams(event, asSent, checked.success),
        ok: reply.ok,
        errorCode: reply.ok ? null : reply.error.code,
        message: reply.ok ? null : reply.error.message,
        durationMs,
        jobId: opts.jobId ?? null,
      });
    }
    if (def.mutation) {
      this.events.emit('hostChange', {
        hostId,
        action: event,
        module: def.module,
        actor: actor.name,
        ok: reply.ok,
        message: reply.ok ? `${actor.name}: ${event}` : reply.error.message,
      });
    }
    return reply;
  }
}
