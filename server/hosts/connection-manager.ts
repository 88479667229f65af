import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type {
  AgentEvent,
  EventName,
  Hello,
  Reply,
  ReplyData,
  RequestIn,
} from '../../shared/protocol/index.ts';
import type { LinkSocket } from '../../shared/link/socket.ts';
import { Dialer, type PanelTls } from './dialer.ts';
import { HostLink, type CallOptions } from './link.ts';
import type { HostMode } from '../db/hosts.ts';

export { DEFAULT_MAX_CONCURRENT_CONNECTS, describeConnectError, type PanelTls } from './dialer.ts';

export type HostState = 'online' | 'offline' | 'connecting' | 'refused';

/** Who opens the connection: the panel dials the agent, or the agent dials the panel. */
export type { HostMode } from '../db/hosts.ts';

export type HostTarget =
  | {
      id: string;
      mode?: 'forward';
      /** DNS name or IP of the agent. */
      address: string;
      port: number;
    }
  | { id: string; mode: 'reverse' };

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

interface ManagerEvents {
  state: [HostStatus];
  hello: [string, Hello];
  agentEvent: [string, AgentEvent];
}

interface Conn {
  target: HostTarget;
  status: HostStatus;
  /** The live link (hello may still be pending), or null. */
  link: HostLink | null;
}

/** The state line of a reverse-mode host without a link. */
export const WAITING_FOR_AGENT = 'waiting for the agent to connect';

const modeOf = (t: HostTarget): HostMode => t.mode ?? 'forward';

/**
 * The panel's hosts and their links. A link does not know who dialed: forward-mode hosts get
 * theirs from the {@link Dialer} (the panel connects out), reverse-mode hosts from the agent
 * listener (`accept`, agent-listener.ts). Tracks each host's state and offers a typed `call`,
 * which goes to the host's {@link HostLink}.
 */
export class ConnectionManager extends EventEmitter<ManagerEvents> {
  private readonly conns = new Map<string, Conn>();
  private readonly dialer: Dialer;
  private closed = false;

  constructor(private readonly opts: ConnectionManagerOptions) {
    super();
    this.dialer = new Dialer(opts, {
      connected: (id, socket) => {
        const conn = this.conns.get(id);
        if (conn) this.attach(conn, socket);
        else socket.close();
      },
      failed: (id, state, reason) => {
        const conn = this.conns.get(id);
        if (conn) this.setState(conn, state, reason);
      },
    });
  }

  /** Starts connecting to a host, or waiting for it to connect (replaces any previous link). */
  add(target: HostTarget): void {
    if (this.closed) throw new Error('connection manager is closed');
    this.remove(target.id);
    const reverse = modeOf(target) === 'reverse';
    const status: HostStatus = {
      id: target.id,
      state: reverse ? 'offline' : 'connecting',
      lastSeen: null,
      lastError: reverse ? WAITING_FOR_AGENT : null,
      hello: null,
      since: Date.now(),
    };
    const conn: Conn = { target, status, link: null };
    this.conns.set(target.id, conn);
    this.emit('state', { ...status });
    if (target.mode !== 'reverse') this.dialer.start(target);
  }

  /** Disconnects and forgets a host at once (no reconnection; a reverse link is cut). */
  remove(hostId: string): void {
    const conn = this.conns.get(hostId);
    if (!conn) return;
    this.conns.delete(hostId);
    this.dialer.stop(hostId);
    this.dropLink(conn);
  }

  /**
   * Reconnects every host (e.g. after the panel certificate was rotated). Reverse links are cut:
   * their agents dial again and meet the listener's new certificate.
   */
  reconnectAll(): void {
    for (const conn of [...this.conns.values()]) this.add(conn.target);
  }

  /**
   * Whether a host may bring its own link now: known and in reverse mode. The agent listener
   * asks before any handler runs.
   */
  acceptable(hostId: string): { ok: true } | { ok: false; reason: string } {
    const conn = this.conns.get(hostId);
    if (!conn) return { ok: false, reason: 'unknown or removed host' };
    if (modeOf(conn.target) !== 'reverse')
      return { ok: false, reason: 'host is in forward mode: the panel dials it' };
    return { ok: true };
  }

  /**
   * Takes a link the agent opened (reverse mode). At most one live link per host: a newer one
   * replaces the older. Returns false (and closes the socket) when the host may not connect.
   */
  accept(hostId: string, socket: LinkSocket, remote: string): boolean {
    const ok = this.acceptable(hostId);
    const conn = this.conns.get(hostId);
    if (!ok.ok || !conn) {
      this.opts.logger.warn({ hostId, remote, reason: ok.ok ? '' : ok.reason }, 'refused an agent link');
      socket.close();
      return false;
    }
    if (conn.link) this.opts.logger.info({ hostId, remote }, 'a newer link replaces the older one');
    this.attach(conn, socket);
    // Online again once this link's hello checks out.
    this.setState(conn, 'connecting', null);
    return true;
  }

  /** Connection attempts under way and hosts waiting for a slot (for tests and diagnostics). */
  connectQueue(): { inFlight: number; waiting: number; max: number } {
    return this.dialer.queue();
  }

  has(hostId: string): boolean {
    return this.conns.has(hostId);
  }

  mode(hostId: string): HostMode | null {
    const c = this.conns.get(hostId);
    return c ? modeOf(c.target) : null;
  }

  /** Where a host's link comes from (its mode, and for forward mode the address dialed). */
  target(hostId: string): HostTarget | null {
    const c = this.conns.get(hostId);
    return c ? { ...c.target } : null;
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
   * Calls an RPC event on a host through its link ({@link HostLink.call}, the one place a call
   * goes out). Unknown host → `not-found`; no live link → `unavailable` at once.
   */
  async call<E extends EventName>(
    hostId: string,
    event: E,
    params: RequestIn<E>,
    options: CallOptions = {},
  ): Promise<Reply<ReplyData<E>>> {
    const conn = this.conns.get(hostId);
    if (!conn) return { ok: false, error: { code: 'not-found', message: `Unknown host ${hostId}.` } };
    const link = conn.link;
    if (!link?.connected || conn.status.state !== 'online') {
      return {
        ok: false,
        error: {
          code: 'unavailable',
          message: `Host ${hostId} is ${conn.status.state}${conn.status.lastError ? `: ${conn.status.lastError}` : ''}.`,
        },
      };
    }
    return link.call(event, params, options);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.conns.keys()]) this.remove(id);
    this.dialer.close();
    await Promise.resolve();
  }

  // --- internals -------------------------------------------------------------------------

  private attach(conn: Conn, socket: LinkSocket): void {
    this.dropLink(conn);
    const id = conn.target.id;
    const link = new HostLink(id, socket, {
      logger: this.opts.logger,
      ...(this.opts.defaultCallTimeoutMs !== undefined
        ? { defaultCallTimeoutMs: this.opts.defaultCallTimeoutMs }
        : {}),
    });
    conn.link = link;
    const current = (): boolean => this.conns.get(id) === conn && conn.link === link;
    link.on('hello', (hello) => {
      if (!current()) return;
      conn.status.hello = hello;
      this.setState(conn, 'online', null);
      this.emit('hello', id, hello);
    });
    link.on('refused', (reason) => {
      if (current()) this.setState(conn, 'refused', reason);
    });
    link.on('agentEvent', (e) => {
      if (current()) this.emit('agentEvent', id, e);
    });
    link.on('alive', () => {
      if (current()) conn.status.lastSeen = Date.now();
    });
    link.on('closed', (reason) => {
      if (!current()) return;
      conn.link = null;
      if (conn.status.state !== 'refused') this.setState(conn, 'offline', `connection lost (${reason})`);
    });
  }

  private dropLink(conn: Conn): void {
    const link = conn.link;
    if (!link) return;
    conn.link = null;
    link.removeAllListeners();
    link.close();
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
}
