import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  AGENT_EVENT,
  HELLO_EVENT,
  PROTOCOL_VERSION,
  agentEventSchema,
  helloSchema,
  isEventName,
  replySchema,
  rpcEvents,
  type AgentEvent,
  type EventName,
  type Hello,
  type Reply,
  type ReplyData,
  type RequestIn,
} from '../../shared/protocol/index.ts';
import type { LinkSocket } from '../../shared/link/socket.ts';
import { MAX_DEADLINE_MS } from '../../shared/protocol/define.ts';

/** How much longer the panel waits than the deadline it gives the agent (network, scheduling). */
export const DEADLINE_GRACE_MS = 2_000;

export interface HostLinkOptions {
  logger: Logger;
  /** Upper bound of a call's wait for its reply (on top of each event's own timeout). */
  defaultCallTimeoutMs?: number;
}

export interface CallOptions {
  timeoutMs?: number;
}

interface HostLinkEvents {
  /** The agent's hello checked out: the host is online over this link. */
  hello: [Hello];
  /** The agent sent something the panel does not accept; the link is closed. */
  refused: [string];
  agentEvent: [AgentEvent];
  /** A sign of life: a reply or a keep-alive. */
  alive: [];
  /** The link ended (once). */
  closed: [string];
}

/**
 * The panel's side of one live connection to one host, over any {@link LinkSocket}: the panel
 * dialed it (forward mode, dialer.ts) or accepted it (reverse mode, agent-listener.ts). It checks
 * the hello, relays the agent's events, and is the one place an RPC call goes out (`call`).
 */
export class HostLink extends EventEmitter<HostLinkEvents> {
  hello: Hello | null = null;
  private ended = false;

  constructor(
    readonly hostId: string,
    private readonly socket: LinkSocket,
    private readonly opts: HostLinkOptions,
  ) {
    super();
    socket.onMessage((event, data) => {
      if (event === HELLO_EVENT) this.onHello(data);
      else if (event === AGENT_EVENT) {
        const e = agentEventSchema.safeParse(data);
        if (e.success) this.emit('agentEvent', e.data);
      }
    });
    socket.onAlive(() => this.emit('alive'));
    socket.onClose((reason) => {
      if (this.ended) return;
      this.ended = true;
      this.emit('closed', reason);
    });
  }

  get connected(): boolean {
    return !this.ended && this.socket.connected;
  }

  /**
   * Calls an RPC event on the host. Always resolves with the reply union: link down →
   * `unavailable` at once, no ack in time → `timeout`, a reply that breaks the contract →
   * `internal`. Mutations get a requestId when the caller gave none.
   */
  async call<E extends EventName>(
    event: E,
    params: RequestIn<E>,
    options: CallOptions = {},
  ): Promise<Reply<ReplyData<E>>> {
    const hostId = this.hostId;
    if (!this.connected || !this.hello)
      return { ok: false, error: { code: 'unavailable', message: `Host ${hostId} is not connected.` } };
    if (!isEventName(event))
      return { ok: false, error: { code: 'unsupported', message: `Unknown event "${String(event)}".` } };
    const def = rpcEvents[event];
    const body: Record<string, unknown> = { ...(params as Record<string, unknown>) };
    if (def.mutation && body.requestId === undefined) body.requestId = randomUUID();
    // The agent answers by the deadline it is given (waiting for the module lock included); the
    // panel waits that long plus a grace for the network (docs/protocol.md, "Deadlines").
    const timeoutMs =
      options.timeoutMs ??
      Math.min(def.timeoutMs + DEADLINE_GRACE_MS, this.opts.defaultCallTimeoutMs ?? Number.MAX_SAFE_INTEGER);
    // Only agents that announce the feature get the field (an older agent's strict schemas refuse it).
    if (!this.hello.features?.includes('deadline')) delete body.deadlineMs;
    else if (body.deadlineMs === undefined)
      body.deadlineMs = Math.min(
        MAX_DEADLINE_MS,
        Math.max(1, Math.round(timeoutMs - Math.min(DEADLINE_GRACE_MS, timeoutMs / 2))),
      );
    let raw: unknown;
    try {
      raw = await this.socket.request(event, body, timeoutMs);
    } catch {
      // The link dropped with the call in flight: a mutation may have acted (the agent may have
      // been killed after its change, before its reply), so its outcome is unknown as well.
      if (!this.connected)
        return {
          ok: false,
          error: {
            code: 'unavailable',
            message: def.mutation
              ? `Host ${hostId} disconnected during "${event}"; it may have been done (its outcome is looked up when the host is back).`
              : `Host ${hostId} disconnected during "${event}".`,
            ...(def.mutation ? { details: { outcome: 'unknown' } } : {}),
          },
        };
      // No answer at all: a mutation may have acted (the panel resolves it later, outcomes.ts).
      return {
        ok: false,
        error: {
          code: 'timeout',
          message: `Host ${hostId} did not answer "${event}" within ${timeoutMs / 1000} s.`,
          ...(def.mutation ? { details: { outcome: 'unknown' } } : {}),
        },
      };
    }
    this.emit('alive');
    const parsed = replySchema(def.reply).safeParse(raw);
    if (!parsed.success) {
      this.opts.logger.error(
        { hostId, event, requestId: body.requestId, issues: parsed.error.issues.slice(0, 3) },
        'agent reply breaks the contract',
      );
      return {
        ok: false,
        error: {
          code: 'internal',
          message: `Host ${hostId} sent a reply to "${event}" that does not match the protocol.`,
        },
      };
    }
    return parsed.data as Reply<ReplyData<E>>;
  }

  /** Ends the link (no `closed` event: the caller knows). */
  close(): void {
    this.ended = true;
    this.socket.close();
  }

  private onHello(raw: unknown): void {
    const h = helloSchema.safeParse(raw);
    if (!h.success) return this.refuse('the agent sent an invalid hello');
    if (h.data.protocolVersion !== PROTOCOL_VERSION)
      return this.refuse(
        `the agent speaks protocol ${h.data.protocolVersion}, the panel ${PROTOCOL_VERSION}`,
      );
    this.hello = h.data;
    this.emit('hello', h.data);
  }

  private refuse(reason: string): void {
    this.emit('refused', reason);
    this.close();
  }
}
