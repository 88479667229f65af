import { EventEmitter } from 'node:events';
import { X509Certificate, randomUUID } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { createSecureContext, type PeerCertificate } from 'node:tls';
import { io, type Socket } from 'socket.io-client';
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
import { verifyPeerCertificate } from '../../shared/pki/verify.ts';
import { wireParser } from '../../shared/protocol/wire-parser.ts';

export type HostState = 'online' | 'offline' | 'connecting' | 'refused';

export interface HostTarget {
  id: string;
  /** DNS name or IP of the agent. */
  address: string;
  port: number;
}

export interface HostStatus {
  id: string;
  state: HostState;
  /** Epoch ms of the last sign of life (connect, heartbeat, reply). */
  lastSeen: number | null;
  /** Why the last connection attempt failed or the connection ended. */
  lastError: string | null;
  hello: Hello | null;
  since: number;
}

export interface PanelTls {
  certPem: string;
  keyPem: string;
  caPem: string;
}

export interface ConnectionManagerOptions {
  /** The panel's current client certificate material (read on every (re)connection). */
  tls: () => PanelTls;
  logger: Logger;
  /** Reconnection backoff, jittered ±50 %. */
  backoff?: { minMs: number; maxMs: number };
  connectTimeoutMs?: number;
  defaultCallTimeoutMs?: number;
  /** Revoked agent-certificate serials (normalised): such a certificate is refused at the handshake. */
  revoked?: () => ReadonlySet<string>;
  /**
   * At most this many connection attempts (TCP + TLS + Socket.IO handshake) in flight at once; the
   * other hosts wait their turn in order. Default 50: a thousand simultaneous handshakes on a small
   * panel time out together and retry in lock-step.
   */
  maxConcurrentConnects?: number;
}

/** Default of {@link ConnectionManagerOptions.maxConcurrentConnects}. */
export const DEFAULT_MAX_CONCURRENT_CONNECTS = 50;

interface ManagerEvents {
  state: [HostStatus];
  hello: [string, Hello];
  agentEvent: [string, AgentEvent];
}

interface Conn {
  target: HostTarget;
  /** null while waiting for a connection slot or for the next retry. */
  socket: Socket | null;
  status: HostStatus;
  retryTimer: NodeJS.Timeout | null;
  attempts: number;
  /** Holds one of the manager's connection slots (handshake under way). */
  inFlight: boolean;
}

/** The TLS material every outgoing connection shares until the panel certificate changes. */
interface SharedTls {
  material: PanelTls;
  /** Carries the one SecureContext; sessions are never cached, so every handshake is fully checked. */
  agent: HttpsAgent;
}

const IDENTITY_ERROR = 'PONIO_IDENTITY';

/**
 * One Socket.IO client per host, over mutual TLS with the panel's client certificate. Checks the
 * agent's certificate carries urn:ponio:host:<expected id> (one host cannot impersonate another),
 * reconnects with jittered backoff, tracks state, and offers a typed `call`.
 *
 * All connections share one TLS SecureContext (rebuilt when the panel certificate changes), and at
 * most `maxConcurrentConnects` handshakes run at once: the other hosts queue in order.
 */
export class ConnectionManager extends EventEmitter<ManagerEvents> {
  private readonly conns = new Map<string, Conn>();
  private readonly backoff: { minMs: number; maxMs: number };
  private readonly maxConnects: number;
  /** Hosts waiting for a connection slot, oldest first. */
  private readonly pending = new Set<Conn>();
  private inFlight = 0;
  private shared: SharedTls | null = null;
  private closed = false;

  constructor(private readonly opts: ConnectionManagerOptions) {
    super();
    this.backoff = opts.backoff ?? { minMs: 500, maxMs: 30_000 };
    this.maxConnects = Math.max(1, opts.maxConcurrentConnects ?? DEFAULT_MAX_CONCURRENT_CONNECTS);
  }

  /** Starts connecting to a host (replaces any previous connection for that id). */
  add(target: HostTarget): void {
    if (this.closed) throw new Error('connection manager is closed');
    this.remove(target.id);
    const status: HostStatus = {
      id: target.id,
      state: 'connecting',
      lastSeen: null,
      lastError: null,
      hello: null,
      since: Date.now(),
    };
    const conn: Conn = { target, socket: null, status, retryTimer: null, attempts: 0, inFlight: false };
    this.conns.set(target.id, conn);
    this.emit('state', { ...status });
    this.enqueue(conn);
  }

  /** Disconnects and forgets a host at once (no reconnection). */
  remove(hostId: string): void {
    const conn = this.conns.get(hostId);
    if (!conn) return;
    this.conns.delete(hostId);
    if (conn.retryTimer) clearTimeout(conn.retryTimer);
    conn.retryTimer = null;
    this.pending.delete(conn);
    this.dropSocket(conn);
    this.releaseSlot(conn);
  }

  /** Reconnects every host (e.g. after the panel certificate was rotated). */
  reconnectAll(): void {
    for (const conn of [...this.conns.values()]) this.add(conn.target);
  }

  /** Connection attempts under way and hosts waiting for a slot (for tests and diagnostics). */
  connectQueue(): { inFlight: number; waiting: number; max: number } {
    return { inFlight: this.inFlight, waiting: this.pending.size, max: this.maxConnects };
  }

  has(hostId: string): boolean {
    return this.conns.has(hostId);
  }

  status(hostId: string): HostStatus | null {
    const c = this.conns.get(hostId);
    return c ? { ...c.status } : null;
  }

  statuses(): HostStatus[] {
    return [...this.conns.values()].map((c) => ({ ...c.status }));
  }

  /** Resolves when the host is online (or rejects after timeoutMs). */
  waitForState(hostId: string, state: HostState, timeoutMs = 10_000): Promise<HostStatus> {
    const now = this.status(hostId);
    if (now?.state === state) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const onState = (s: HostStatus): void => {
        if (s.id === hostId && s.state === state) {
          clearTimeout(timer);
          this.off('state', onState);
          resolve(s);
        }
      };
      const timer = setTimeout(() => {
        this.off('state', onState);
        const s = this.status(hostId);
        reject(
          new Error(
            `host ${hostId} did not become ${state} within ${timeoutMs} ms (now ${s?.state ?? 'unknown'}: ${s?.lastError ?? ''})`,
          ),
        );
      }, timeoutMs);
      this.on('state', onState);
    });
  }

  /**
   * Calls an RPC event on a host. Always resolves with the reply union: host offline →
   * `unavailable` at once, no ack in time → `timeout`, a reply that breaks the contract →
   * `internal`. Mutations get a requestId when the caller gave none.
   */
  async call<E extends EventName>(
    hostId: string,
    event: E,
    params: RequestIn<E>,
    options: { timeoutMs?: number } = {},
  ): Promise<Reply<ReplyData<E>>> {
    const conn = this.conns.get(hostId);
    if (!conn) return { ok: false, error: { code: 'not-found', message: `Unknown host ${hostId}.` } };
    const socket = conn.socket;
    if (!socket?.connected || conn.status.state !== 'online') {
      return {
        ok: false,
        error: {
          code: 'unavailable',
          message: `Host ${hostId} is ${conn.status.state}${conn.status.lastError ? `: ${conn.status.lastError}` : ''}.`,
        },
      };
    }
    if (!isEventName(event))
      return { ok: false, error: { code: 'unsupported', message: `Unknown event "${String(event)}".` } };
    const def = rpcEvents[event];
    const body: Record<string, unknown> = { ...(params as Record<string, unknown>) };
    if (def.mutation && body.requestId === undefined) body.requestId = randomUUID();
    const timeoutMs =
      options.timeoutMs ??
      Math.min(def.timeoutMs + 2_000, this.opts.defaultCallTimeoutMs ?? Number.MAX_SAFE_INTEGER);
    let raw: unknown;
    try {
      raw = await socket.timeout(timeoutMs).emitWithAck(event, body);
    } catch {
      if (!socket.connected)
        return {
          ok: false,
          error: { code: 'unavailable', message: `Host ${hostId} disconnected during "${event}".` },
        };
      return {
        ok: false,
        error: {
          code: 'timeout',
          message: `Host ${hostId} did not answer "${event}" within ${timeoutMs / 1000} s.`,
        },
      };
    }
    conn.status.lastSeen = Date.now();
    const parsed = replySchema(def.reply).safeParse(raw);
    if (!parsed.success) {
      this.opts.logger.error(
        { hostId, event, issues: parsed.error.issues.slice(0, 3) },
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

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.conns.keys()]) this.remove(id);
    await Promise.resolve();
  }

  // --- internals -------------------------------------------------------------------------

  private enqueue(conn: Conn): void {
    this.pending.add(conn);
    this.pump();
  }

  /** Starts queued connection attempts while slots are free. */
  private pump(): void {
    while (this.inFlight < this.maxConnects && !this.closed) {
      const next = this.pending.values().next();
      if (next.done) return;
      const conn = next.value;
      this.pending.delete(conn);
      if (this.conns.get(conn.target.id) !== conn) continue;
      conn.inFlight = true;
      this.inFlight++;
      let socket: Socket;
      try {
        // A fresh socket each attempt, so a rotated panel certificate is picked up.
        socket = this.createSocket(conn.target);
      } catch (e) {
        // E.g. the panel's own certificate and key do not match: no handshake can succeed.
        this.setState(conn, 'refused', `the panel's TLS material is unusable: ${(e as Error).message}`);
        this.scheduleRetry(conn);
        continue;
      }
      conn.socket = socket;
      this.wire(conn, socket);
      socket.connect();
    }
  }

  private releaseSlot(conn: Conn): void {
    if (!conn.inFlight) return;
    conn.inFlight = false;
    this.inFlight--;
    this.pump();
  }

  private dropSocket(conn: Conn): void {
    const socket = conn.socket;
    if (!socket) return;
    conn.socket = null;
    socket.removeAllListeners();
    socket.io.removeAllListeners();
    socket.disconnect();
    socket.io.engine?.close();
  }

  /**
   * The https.Agent carrying the one SecureContext built from the panel's current certificate,
   * key and CA; rebuilt when `tls()` returns different material (certificate rotation).
   */
  private sharedTls(): SharedTls {
    const m = this.opts.tls();
    const cur = this.shared;
    if (
      cur &&
      cur.material.certPem === m.certPem &&
      cur.material.keyPem === m.keyPem &&
      cur.material.caPem === m.caPem
    )
      return cur;
    const secureContext = createSecureContext({ cert: m.certPem, key: m.keyPem, ca: m.caPem });
    // maxCachedSessions 0: a resumed TLS session skips checkServerIdentity, i.e. the identity and
    // revocation checks below; every connection must do a full handshake.
    const agent = new HttpsAgent({ secureContext, maxCachedSessions: 0, keepAlive: false });
    this.shared = { material: { certPem: m.certPem, keyPem: m.keyPem, caPem: m.caPem }, agent };
    return this.shared;
  }

  private createSocket(target: HostTarget): Socket {
    const { material, agent } = this.sharedTls();
    const caPem = material.caPem;
    const host = target.address.includes(':') ? `[${target.address}]` : target.address;
    const expectedId = target.id;
    const revoked = this.opts.revoked;
    return io(`https://${host}:${target.port}`, {
      autoConnect: false,
      forceNew: true,
      transports: ['websocket'],
      reconnection: false, // our own jittered backoff handles every failure kind alike
      timeout: this.opts.connectTimeoutMs ?? 10_000,
      perMessageDeflate: false,
      // JSON-only packets without the default encoder's per-packet binary scan; a malformed or
      // binary packet from the agent closes the connection (shared/protocol/wire-parser.ts).
      parser: wireParser,
      // The agent's SecureContext holds the panel certificate, key and the CA (the only trust
      // anchor): TLS itself checks the agent's chain to the CA.
      agent,
      rejectUnauthorized: true,
      checkServerIdentity: (_name: string, cert: PeerCertificate): Error | undefined => {
        const r = verifyPeerCertificate(new X509Certificate(cert.raw), {
          caPem,
          expect: { kind: 'host', hostId: expectedId },
          purpose: 'serverAuth', // the agent is the TLS server here
          ...(revoked ? { revoked: revoked() } : {}),
        });
        if (r.ok) return undefined;
        const err = new Error(`agent certificate refused: ${r.reason}`) as Error & { code: string };
        err.code = IDENTITY_ERROR;
        return err;
      },
      // engine.io-client passes `agent` on to ws/https untouched; its type says string | boolean.
    } as unknown as Parameters<typeof io>[1]);
  }

  private setState(conn: Conn, state: HostState, error?: string | null): void {
    const s = conn.status;
    const changed = s.state !== state || (error !== undefined && error !== s.lastError);
    if (s.state !== state) s.since = Date.now();
    s.state = state;
    if (error !== undefined) s.lastError = error;
    if (state === 'online') s.lastSeen = Date.now();
    if (changed && this.conns.get(s.id) === conn) this.emit('state', { ...s });
  }

  /** Ends the current attempt or connection and queues the next one after a jittered backoff. */
  private scheduleRetry(conn: Conn): void {
    this.dropSocket(conn);
    this.releaseSlot(conn);
    if (this.closed || this.conns.get(conn.target.id) !== conn || conn.retryTimer) return;
    conn.attempts++;
    const base = Math.min(this.backoff.maxMs, this.backoff.minMs * 2 ** Math.min(conn.attempts - 1, 16));
    const delay = Math.round(base * (0.5 + Math.random()));
    conn.retryTimer = setTimeout(() => {
      conn.retryTimer = null;
      if (this.conns.get(conn.target.id) === conn) this.enqueue(conn);
    }, delay);
  }

  private wire(conn: Conn, socket: Socket): void {
    const id = conn.target.id;
    socket.on('connect', () => {
      conn.attempts = 0;
      // The handshake is done: the slot goes to the next host. 'online' is set when the hello
      // arrives and checks out.
      this.releaseSlot(conn);
    });
    socket.on(HELLO_EVENT, (raw: unknown) => {
      const h = helloSchema.safeParse(raw);
      if (!h.success) {
        this.setState(conn, 'refused', 'the agent sent an invalid hello');
        this.scheduleRetry(conn);
        return;
      }
      if (h.data.protocolVersion !== PROTOCOL_VERSION) {
        this.setState(
          conn,
          'refused',
          `the agent speaks protocol ${h.data.protocolVersion}, the panel ${PROTOCOL_VERSION}`,
        );
        this.scheduleRetry(conn);
        return;
      }
      conn.status.hello = h.data;
      this.setState(conn, 'online', null);
      this.emit('hello', id, h.data);
    });
    socket.on(AGENT_EVENT, (raw: unknown) => {
      const e = agentEventSchema.safeParse(raw);
      if (e.success) this.emit('agentEvent', id, e.data);
    });
    socket.io.on('ping', () => {
      conn.status.lastSeen = Date.now();
    });
    socket.on('connect_error', (err: Error & { description?: unknown }) => {
      const reason = describeConnectError(err);
      this.opts.logger.debug({ hostId: id, reason: reason.message }, 'connection failed');
      this.setState(conn, reason.refused ? 'refused' : 'offline', reason.message);
      this.scheduleRetry(conn);
    });
    socket.on('disconnect', (reason: string) => {
      if (this.conns.get(id) !== conn || conn.socket !== socket) return;
      if (conn.status.state !== 'refused') this.setState(conn, 'offline', `connection lost (${reason})`);
      this.scheduleRetry(conn);
    });
  }
}

/** Turns a socket.io connect_error into a reason an admin understands. */
export function describeConnectError(err: Error & { description?: unknown }): {
  message: string;
  refused: boolean;
} {
  const inner = findInnerError(err);
  const code = inner?.code ?? '';
  const msg = inner?.message ?? err.message;
  if (code === IDENTITY_ERROR) return { message: msg, refused: true };
  if (err.message.startsWith('refused:'))
    return { message: `the agent refused the panel: ${err.message.slice(9)}`, refused: true };
  if (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ERR_SSL/.test(code) || /certificate|alert/i.test(msg))
    return { message: `TLS refused: ${msg}`, refused: true };
  if (code === 'ECONNREFUSED')
    return { message: 'connection refused (is the agent running?)', refused: false };
  if (code === 'ETIMEDOUT' || /timeout/i.test(err.message))
    return { message: 'connection timed out', refused: false };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return { message: `address not found (${msg})`, refused: false };
  if (code === 'ECONNRESET' || /socket hang up/.test(msg))
    return {
      message: 'the agent closed the connection during the handshake (is the panel certificate accepted?)',
      refused: true,
    };
  return { message: msg || 'connection failed', refused: false };
}

function findInnerError(err: unknown, depth = 0): (Error & { code?: string }) | null {
  if (!err || typeof err !== 'object' || depth > 4) return null;
  const e = err as { code?: unknown; description?: unknown; error?: unknown; message?: unknown };
  if (typeof e.code === 'string') return err as Error & { code: string };
  return findInnerError(e.description, depth + 1) ?? findInnerError(e.error, depth + 1);
}
