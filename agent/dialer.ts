import https from 'node:https';
import type { TLSSocket, PeerCertificate, ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import { io, type Socket } from 'socket.io-client';
import type { Logger } from 'pino';
import { wireParser } from '../shared/protocol/wire-parser.ts';
import { clientLinkSocket } from '../shared/link/socket-io.ts';
import type { AgentLinks } from './link.ts';

export interface DialOutOptions {
  /** The panel's agent listener(s), `wss://HOST:PORT`, tried in turn. */
  urls: readonly string[];
  links: AgentLinks;
  logger: Logger;
  /** Backoff after a round of failed attempts: exponential from minMs, jittered, at most maxMs. */
  backoff?: { minMs: number; maxMs: number };
  connectTimeoutMs?: number;
  /** After a live link ends, the first redial waits a random delay up to this (REDIAL_SPREAD_MS). */
  spreadMs?: number;
  /** Random numbers in [0, 1) for the jitter (tests pass a fixed one). */
  random?: () => number;
}

export interface DialOut {
  /** Whether a link to the panel is up. */
  connected(): boolean;
  /** Resolves when the next link is up (tests and diagnostics). */
  whenConnected(timeoutMs: number): Promise<void>;
  /** Closes the link cleanly (the panel sees it at once) and stops dialing. */
  stop(): void;
}

/** Reconnection backoff of the agent: 0.5 s doubling, jittered, never more than 30 s. */
export const DIAL_BACKOFF = { minMs: 500, maxMs: 30_000 } as const;

/**
 * A live link that ends is re-dialed after a random delay in [0, 3 s]: a panel restart or a
 * panel certificate rotation ends every link at once, and a thousand agents re-dialing in the
 * same instant would queue a thousand TLS handshakes on the panel together (~330/s instead).
 */
export const REDIAL_SPREAD_MS = 3_000;

/** The first redial after a lost link: uniform in [0, spreadMs]. */
export const redialDelay = (spreadMs: number, rnd = Math.random): number =>
  Math.round(Math.max(0, spreadMs) * Math.min(1, Math.max(0, rnd())));

/** The delay before attempt round `round` (1, 2, …): exponential, jittered ×0.5–1.5, capped. */
export function backoffDelay(round: number, b: { minMs: number; maxMs: number }, rnd = Math.random): number {
  const base = Math.min(b.maxMs, b.minMs * 2 ** Math.min(Math.max(round - 1, 0), 16));
  return Math.min(b.maxMs, Math.round(base * (0.5 + rnd())));
}

/** An https.Agent that remembers the one TLS socket it made (one agent per attempt). */
class OneSocketAgent extends https.Agent {
  tlsSocket: TLSSocket | null = null;
  override createConnection(
    options: ConnectionOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex {
    // https.Agent's own createConnection returns the TLSSocket (@types/node types it loosely).
    const s = super.createConnection(options, callback) as unknown as TLSSocket;
    this.tlsSocket = s;
    return s;
  }
}

/**
 * The reverse-mode transport of the agent: dials the panel's agent listener and serves the
 * router over the link (AgentLinks). Presents the host certificate as TLS client and accepts the
 * listener only as the panel: chain to the pinned CA, urn:ponio:panel, serverAuth, validity,
 * not revoked (AgentLinks.checkPanel) — never by host name. Every attempt is a new TCP + TLS
 * connection to a freshly resolved address; failures back off exponentially with jitter, at most
 * 30 s. Opens no listening port.
 */
export function startDialOut(opts: DialOutOptions): DialOut {
  const { links, logger: log } = opts;
  const backoff = opts.backoff ?? DIAL_BACKOFF;
  const rnd = opts.random ?? Math.random;
  let socket: Socket | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let next = 0; // index of the URL to try next
  let failedInRound = 0;
  let rounds = 0;
  let up = false;
  const waiters = new Set<() => void>();

  const drop = (): void => {
    const s = socket;
    socket = null;
    up = false;
    if (!s) return;
    s.disconnect(); // the link's own close listener still runs (AgentLinks forgets it)
    s.removeAllListeners();
    s.io.removeAllListeners();
    s.io.engine?.close();
  };

  /** Dials again: after a failed attempt (backoff), or after a live link ended (`lost`: spread). */
  const retry = (lost = false): void => {
    drop();
    if (stopped || timer) return;
    let delay = 0;
    if (lost) {
      delay = redialDelay(opts.spreadMs ?? REDIAL_SPREAD_MS, rnd);
    } else {
      failedInRound++;
      // The next URL at once while this round has untried ones; then wait before the next round.
      if (failedInRound >= opts.urls.length) {
        failedInRound = 0;
        rounds++;
        delay = backoffDelay(rounds, backoff, rnd);
      }
    }
    timer = setTimeout(() => {
      timer = null;
      attempt();
    }, delay);
  };

  const attempt = (): void => {
    if (stopped) return;
    const url = opts.urls[next % opts.urls.length] ?? '';
    next = (next + 1) % opts.urls.length;
    const tls = links.tls;
    // A new agent per attempt: no TLS session is resumed (a resumed session would skip the
    // identity check below) and no address is cached — the name is resolved again each time.
    const agent = new OneSocketAgent({
      cert: tls.certPem,
      key: tls.keyPem,
      ca: tls.caPem,
      maxCachedSessions: 0,
      keepAlive: false,
    });
    const s = io(url.replace(/^wss:/, 'https:'), {
      autoConnect: false,
      forceNew: true,
      transports: ['websocket'],
      reconnection: false,
      timeout: opts.connectTimeoutMs ?? 10_000,
      perMessageDeflate: false,
      parser: wireParser,
      agent,
      rejectUnauthorized: true,
      // The panel's listener is the TLS server here: its certificate must be the panel's.
      checkServerIdentity: (_name: string, cert: PeerCertificate): Error | undefined => {
        const r = links.checkPanel(cert.raw, 'serverAuth');
        return r.ok ? undefined : new Error(`the panel's certificate was refused: ${r.reason}`);
      },
    } as unknown as Parameters<typeof io>[1]);
    socket = s;
    s.on('connect', () => {
      const t = agent.tlsSocket;
      failedInRound = 0;
      rounds = 0;
      up = true;
      const peer = {
        address: (t?.remoteAddress ?? '').replace(/^::ffff:/, ''),
        port: t?.remotePort ?? 0,
        localPort: t?.localPort ?? 0,
        direction: 'outbound' as const,
      };
      log.info({ url, peer }, 'connected to the panel');
      const linkSocket = clientLinkSocket(s);
      links.serve({
        socket: linkSocket,
        peer,
        panelCert: () => t?.getPeerCertificate(false)?.raw,
        purpose: 'serverAuth',
      });
      // After the links' own listener: dial again once this link ends.
      s.on('disconnect', (reason) => {
        if (socket !== s) return;
        log.warn({ url, reason }, 'link to the panel lost; dialing again');
        retry(true);
      });
      for (const w of waiters) w();
      waiters.clear();
    });
    s.on('connect_error', (err: Error & { description?: unknown }) => {
      if (socket !== s) return;
      log.warn({ url, err: describe(err) }, 'could not connect to the panel');
      retry();
    });
    s.connect();
  };

  if (opts.urls.length === 0) throw new Error('no panel URL to dial');
  attempt();

  return {
    connected: () => up,
    whenConnected(timeoutMs) {
      if (up) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiters.delete(done);
          reject(new Error(`not connected to the panel within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(t);
          resolve();
        };
        waiters.add(done);
      });
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      drop();
    },
  };
}

/** The innermost error message of a socket.io connect_error. */
function describe(err: Error & { description?: unknown }): string {
  let e: unknown = err;
  for (let i = 0; i < 4; i++) {
    const d = (e as { description?: unknown; error?: unknown } | null)?.description;
    const inner = d ?? (e as { error?: unknown } | null)?.error;
    if (!inner || typeof inner !== 'object') break;
    e = inner;
  }
  return (e as Error).message || err.message;
}
