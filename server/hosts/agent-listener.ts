import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo, Socket as NetSocket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Server as IoServer } from 'socket.io';
import type { Logger } from 'pino';
import { HOST_URI_PREFIX } from '../../shared/pki/identity.ts';
import { sanUris, verifyPeerCertificate } from '../../shared/pki/verify.ts';
import { wireParser } from '../../shared/protocol/wire-parser.ts';
import { serverLinkSocket } from '../../shared/link/socket-io.ts';
import type { ConnectionManager, PanelTls } from './connection-manager.ts';

/** Keep-alive of reverse links: a half-open link is noticed within interval + timeout (20 s). */
export const REVERSE_PING = { intervalMs: 10_000, timeoutMs: 10_000 } as const;

export interface AgentListenerOptions {
  host: string;
  port: number;
  /** The panel certificate (urn:ponio:panel, serverAuth + clientAuth), its key and the CA. */
  tls: () => PanelTls;
  /** Revoked host-certificate serials (normalised). */
  revoked: () => ReadonlySet<string>;
  /**
   * The CA's CRL of those serials (PEM, host-crl.ts), kept in the TLS secure context so OpenSSL
   * refuses a revoked certificate in the handshake. The check after the handshake stays, for the
   * moment between a revocation and the re-signed CRL.
   */
  crl?: () => string;
  manager: ConnectionManager;
  logger: Logger;
  ping?: { intervalMs: number; timeoutMs: number };
}

export interface AgentListener {
  port: number;
  /** Closes live links whose certificate is now revoked or whose host is gone. */
  enforce(): void;
  /** Whether it still accepts connections (the panel's `agent listener` readiness probe). */
  listening(): boolean;
  /** Stops accepting and ends every link (idempotent). */
  close(): Promise<void>;
}

export type Identified = { ok: true; hostId: string; serial: string } | { ok: false; reason: string };

/**
 * Who a dialing agent is, from its client certificate alone: chain to the pinned CA, within its
 * validity, not revoked, clientAuth, and exactly one urn:ponio:host:<id>; then the host must be
 * known to the panel and in reverse mode.
 */
export function identifyAgent(
  raw: Buffer | undefined,
  opts: Pick<AgentListenerOptions, 'revoked' | 'manager'> & { caPem: string },
): Identified {
  if (!raw) return { ok: false, reason: 'no client certificate' };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(raw);
  } catch {
    return { ok: false, reason: 'client certificate could not be parsed' };
  }
  const ids = sanUris(cert).filter((u) => u.startsWith(HOST_URI_PREFIX));
  if (ids.length !== 1 || !ids[0])
    return { ok: false, reason: 'the certificate does not carry exactly one host identity' };
  const hostId = ids[0].slice(HOST_URI_PREFIX.length);
  const r = verifyPeerCertificate(cert, {
    caPem: opts.caPem,
    expect: { kind: 'host', hostId },
    purpose: 'clientAuth', // the agent is the TLS client here
    revoked: opts.revoked(),
  });
  if (!r.ok) return { ok: false, reason: `host ${hostId}: ${r.reason}` };
  const allowed = opts.manager.acceptable(hostId);
  if (!allowed.ok) return { ok: false, reason: `host ${hostId}: ${allowed.reason}` };
  return { ok: true, hostId, serial: r.serial };
}

/**
 * The reverse-mode transport: the panel's agent listener. Mutual TLS with client certificates
 * required and chained to the PonIO CA by TLS itself; a connection is then kept only if
 * {@link identifyAgent} accepts it, checked when the TLS handshake completes (before any HTTP
 * byte is read) and again before the Socket.IO connection is accepted. WebSocket transport only.
 * Accepted sockets become the host's link (ConnectionManager.accept: one live link per host).
 */
export async function startAgentListener(opts: AgentListenerOptions): Promise<AgentListener> {
  const log = opts.logger;
  let material = opts.tls();
  let crl = opts.crl?.() ?? '';
  const context = (m: PanelTls, c: string): { cert: string; key: string; ca: string; crl?: string } => ({
    cert: m.certPem,
    key: m.keyPem,
    ca: m.caPem,
    ...(c ? { crl: c } : {}),
  });
  const server = https.createServer({
    ...context(material, crl),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  // Before Node's own listener builds the TLS socket: a rotated panel certificate and a re-signed
  // CRL apply from the next connection on.
  server.prependListener('connection', (_socket: NetSocket) => {
    const m = opts.tls();
    const c = opts.crl?.() ?? '';
    const same = m.certPem === material.certPem && m.keyPem === material.keyPem && m.caPem === material.caPem;
    if (same && c === crl) return;
    material = m;
    crl = c;
    server.setSecureContext(context(m, c));
  });
  const identify = (socket: TLSSocket): Identified => {
    if (!socket.authorized)
      return {
        ok: false,
        reason: `TLS client authentication failed (${String(socket.authorizationError ?? 'no certificate')})`,
      };
    return identifyAgent(socket.getPeerCertificate(false)?.raw, { ...opts, caPem: material.caPem });
  };
  // Every accepted TLS socket, so close() ends upgraded (WebSocket) ones too.
  const open = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    const r = identify(socket);
    if (!r.ok) {
      log.warn({ remote: socket.remoteAddress, reason: r.reason }, 'refused an agent');
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  server.on('tlsClientError', (err, socket) => {
    // A failed certificate check (CERT_REVOKED from the CRL, a foreign CA …) ends the handshake;
    // its reason is on the socket.
    const reason = socket.authorizationError ? String(socket.authorizationError) : err.message;
    log.warn({ remote: socket.remoteAddress, reason }, 'agent TLS handshake refused');
  });
  server.on('request', (req, res) => {
    if (!req.url?.startsWith('/socket.io/')) res.writeHead(404).end();
  });

  const ping = opts.ping ?? REVERSE_PING;
  const io = new IoServer(server, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
    httpCompression: false,
    parser: wireParser,
    // Replies travel agent → panel on this side: room for a long listing.
    maxHttpBufferSize: 8 * 1024 * 1024,
    pingInterval: ping.intervalMs,
    pingTimeout: ping.timeoutMs,
  });
  const hostOf = new WeakMap<object, string>();
  io.use((socket, next) => {
    const r = identify(socket.request.socket as TLSSocket);
    if (!r.ok) {
      next(new Error(`refused: ${r.reason}`));
      return;
    }
    hostOf.set(socket, r.hostId);
    next();
  });
  io.on('connection', (socket) => {
    const hostId = hostOf.get(socket);
    const tlsSocket = socket.request.socket as TLSSocket;
    const remote = `${(tlsSocket.remoteAddress ?? '').replace(/^::ffff:/, '')}:${tlsSocket.remotePort ?? 0}`;
    if (!hostId) {
      socket.disconnect(true);
      return;
    }
    if (opts.manager.accept(hostId, serverLinkSocket(socket), remote))
      log.info({ hostId, remote }, 'agent connected');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host: opts.host, port }, 'agent listener ready');
  let closing: Promise<void> | null = null;

  return {
    port,
    enforce() {
      for (const s of io.sockets.sockets.values()) {
        const r = identify(s.request.socket as TLSSocket);
        if (!r.ok) {
          log.warn({ reason: r.reason }, 'dropping an agent link');
          s.disconnect(true);
        }
      }
    },
    listening: () => server.listening,
    close() {
      closing ??= (async () => {
        const closed = io.close(); // tells every agent (a clean close: they re-dial at once)
        for (const s of open) s.end();
        const t = setTimeout(() => {
          for (const s of open) s.destroy();
        }, 1_000);
        await closed;
        clearTimeout(t);
        server.closeAllConnections();
      })();
      return closing;
    },
  };
}
