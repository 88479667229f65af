import { X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { createSecureContext, type PeerCertificate } from 'node:tls';
import { io, type Socket } from 'socket.io-client';
import type { Logger } from 'pino';
import { verifyPeerCertificate } from '../../shared/pki/verify.ts';
import { wireParser } from '../../shared/protocol/wire-parser.ts';
import { clientLinkSocket } from '../../shared/link/socket-io.ts';
import type { LinkSocket } from '../../shared/link/socket.ts';

export interface PanelTls {
  certPem: string;
  keyPem: string;
  caPem: string;
}

export interface DialTarget {
  id: string;
  /** DNS name or IP of the agent. */
  address: string;
  port: number;
}

export interface DialerOptions {
  /** The panel's current client certificate material (read on every (re)connection). */
  tls: () => PanelTls;
  logger: Logger;
  /** Reconnection backoff, jittered ±50 %. */
  backoff?: { minMs: number; maxMs: number };
  connectTimeoutMs?: number;
  /** Revoked agent-certificate serials (normalised): such a certificate is refused at the handshake. */
  revoked?: () => ReadonlySet<string>;
  /** At most this many handshakes in flight at once (see ConnectionManagerOptions). */
  maxConcurrentConnects?: number;
}

/** What the dialer reports to the connection manager. */
export interface DialHooks {
  /** The handshake is done: the host's link runs over this socket now. */
  connected(hostId: string, socket: LinkSocket): void;
  /** An attempt failed; the next one follows after a backoff. */
  failed(hostId: string, state: 'offline' | 'refused', reason: string): void;
}

/** Default of {@link DialerOptions.maxConcurrentConnects}. */
export const DEFAULT_MAX_CONCURRENT_CONNECTS = 50;

interface Dial {
  target: DialTarget;
  /** null while waiting for a connection slot or for the next retry. */
  socket: Socket | null;
  retryTimer: NodeJS.Timeout | null;
  attempts: number;
  /** Holds one of the dialer's connection slots (handshake under way). */
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
 * The forward transport: one Socket.IO client per host, over mutual TLS with the panel's client
 * certificate. Checks the agent's certificate carries urn:ponio:host:<expected id> (one host
 * cannot impersonate another) and re-dials with jittered backoff whenever an attempt fails or
 * the link ends.
 *
 * All connections share one TLS SecureContext (rebuilt when the panel certificate changes), and at
 * most `maxConcurrentConnects` handshakes run at once: the other hosts queue in order.
 */
export class Dialer {
  private readonly dials = new Map<string, Dial>();
  private readonly backoff: { minMs: number; maxMs: number };
  readonly maxConnects: number;
  /** Hosts waiting for a connection slot, oldest first. */
  private readonly pending = new Set<Dial>();
  private inFlight = 0;
  private shared: SharedTls | null = null;
  private closed = false;

  constructor(
    private readonly opts: DialerOptions,
    private readonly hooks: DialHooks,
  ) {
    this.backoff = opts.backoff ?? { minMs: 500, maxMs: 30_000 };
    this.maxConnects = Math.max(1, opts.maxConcurrentConnects ?? DEFAULT_MAX_CONCURRENT_CONNECTS);
  }

  /** Starts dialing a host (replaces any previous dial for that id). */
  start(target: DialTarget): void {
    this.stop(target.id);
    const dial: Dial = { target, socket: null, retryTimer: null, attempts: 0, inFlight: false };
    this.dials.set(target.id, dial);
    this.enqueue(dial);
  }

  /** Stops dialing a host and drops its socket (no callbacks follow). */
  stop(hostId: string): void {
    const dial = this.dials.get(hostId);
    if (!dial) return;
    this.dials.delete(hostId);
    if (dial.retryTimer) clearTimeout(dial.retryTimer);
    dial.retryTimer = null;
    this.pending.delete(dial);
    this.dropSocket(dial);
    this.releaseSlot(dial);
  }

  queue(): { inFlight: number; waiting: number; max: number } {
    return { inFlight: this.inFlight, waiting: this.pending.size, max: this.maxConnects };
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.dials.keys()]) this.stop(id);
  }

  private enqueue(dial: Dial): void {
    this.pending.add(dial);
    this.pump();
  }

  /** Starts queued connection attempts while slots are free. */
  private pump(): void {
    while (this.inFlight < this.maxConnects && !this.closed) {
      const next = this.pending.values().next();
      if (next.done) return;
      const dial = next.value;
      this.pending.delete(dial);
      if (this.dials.get(dial.target.id) !== dial) continue;
      dial.inFlight = true;
      this.inFlight++;
      let socket: Socket;
      try {
        // A fresh socket each attempt, so a rotated panel certificate is picked up.
        socket = this.createSocket(dial.target);
      } catch (e) {
        // E.g. the panel's own certificate and key do not match: no handshake can succeed.
        this.hooks.failed(
          dial.target.id,
          'refused',
          `the panel's TLS material is unusable: ${(e as Error).message}`,
        );
        this.scheduleRetry(dial);
        continue;
      }
      dial.socket = socket;
      this.wire(dial, socket);
      socket.connect();
    }
  }

  private releaseSlot(dial: Dial): void {
    if (!dial.inFlight) return;
    dial.inFlight = false;
    this.inFlight--;
    this.pump();
  }

  private dropSocket(dial: Dial): void {
    const socket = dial.socket;
    if (!socket) return;
    dial.socket = null;
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

  private createSocket(target: DialTarget): Socket {
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

  /** Ends the current attempt or connection and queues the next one after a jittered backoff. */
  private scheduleRetry(dial: Dial): void {
    this.dropSocket(dial);
    this.releaseSlot(dial);
    if (this.closed || this.dials.get(dial.target.id) !== dial || dial.retryTimer) return;
    dial.attempts++;
    const base = Math.min(this.backoff.maxMs, this.backoff.minMs * 2 ** Math.min(dial.attempts - 1, 16));
    const delay = Math.round(base * (0.5 + Math.random()));
    dial.retryTimer = setTimeout(() => {
      dial.retryTimer = null;
      if (this.dials.get(dial.target.id) === dial) this.enqueue(dial);
    }, delay);
  }

  private wire(dial: Dial, socket: Socket): void {
    const id = dial.target.id;
    socket.on('connect', () => {
      dial.attempts = 0;
      // The handshake is done: the slot goes to the next host. 'online' is set when the hello
      // arrives and checks out (HostLink).
      this.releaseSlot(dial);
      this.hooks.connected(id, clientLinkSocket(socket));
      // After the link's own listener: the link reports the end to the manager, the dialer only
      // dials again.
      socket.on('disconnect', () => {
        if (this.dials.get(id) === dial && dial.socket === socket) this.scheduleRetry(dial);
      });
    });
    socket.on('connect_error', (err: Error & { description?: unknown }) => {
      const reason = describeConnectError(err);
      this.opts.logger.debug({ hostId: id, reason: reason.message }, 'connection failed');
      this.hooks.failed(id, reason.refused ? 'refused' : 'offline', reason.message);
      this.scheduleRetry(dial);
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
