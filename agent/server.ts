import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Server as IoServer, type Socket } from 'socket.io';
import type { Logger } from 'pino';
import { verifyPeerCertificate } from '../shared/pki/verify.ts';
import { AGENT_EVENT, HELLO_EVENT, type Hello } from '../shared/protocol/hello.ts';
import { wireParser } from '../shared/protocol/wire-parser.ts';
import type { Router } from './rpc/router.ts';

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  caPem: string;
}

export interface AgentServerOptions {
  host: string;
  port: number;
  tls: TlsMaterial;
  /** Revoked serials (normalised), consulted on every connection. */
  revoked: () => ReadonlySet<string>;
  router: Router;
  hello: () => Hello;
  logger: Logger;
}

export interface AgentServer {
  port: number;
  /** Broadcasts `event` {topic, data} to every connected panel. */
  broadcast(topic: string, data: unknown): void;
  /** Replaces the served certificate (renewal) and/or CA without dropping connections. */
  setTls(tls: TlsMaterial): void;
  /** Drops connections whose certificate is now revoked. */
  enforceRevocations(): void;
  close(): Promise<void>;
}

function peerCheck(
  socket: TLSSocket,
  opts: AgentServerOptions,
  caPem: string,
): { ok: true } | { ok: false; reason: string } {
  if (!socket.authorized) {
    return {
      ok: false,
      reason: `TLS client authentication failed (${String(socket.authorizationError ?? 'no certificate')})`,
    };
  }
  const raw = socket.getPeerCertificate(false)?.raw;
  if (!raw) return { ok: false, reason: 'no client certificate' };
  const r = verifyPeerCertificate(new X509Certificate(raw), {
    caPem,
    expect: { kind: 'panel' },
    purpose: 'clientAuth', // the panel is the TLS client here
    revoked: opts.revoked(),
  });
  return r.ok ? { ok: true } : r;
}

/**
 * HTTPS + Socket.IO server of the agent: WebSocket transport only, mutual TLS required. A client
 * is accepted only with a certificate that chains to the pinned CA, carries urn:ponio:panel, is
 * within its validity and is not revoked. Anything else is dropped at the TLS layer and, should
 * that ever be misconfigured, refused again in io.use before any event handler runs.
 */
export async function startAgentServer(opts: AgentServerOptions): Promise<AgentServer> {
  let tls = opts.tls;
  const log = opts.logger;
  const server = https.createServer({
    cert: tls.certPem,
    key: tls.keyPem,
    ca: tls.caPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const r = peerCheck(socket, opts, tls.caPem);
    if (!r.ok) {
      log.warn({ remote: socket.remoteAddress, reason: r.reason }, 'refused a client');
      socket.destroy();
    }
  });
  server.on('tlsClientError', (err, socket) => {
    log.warn({ remote: socket.remoteAddress, err: err.message }, 'TLS handshake refused');
  });
  // Plain HTTP requests on the socket.io port get nothing useful.
  server.on('request', (req, res) => {
    if (!req.url?.startsWith('/socket.io/')) {
      res.writeHead(404).end();
    }
  });

  const io = new IoServer(server, {
    transports: ['websocket'],
    serveClient: false,
    // Small JSON frames: compression would only add latency (and is engine.io's default anyway).
    // Both ends of the link set TCP_NODELAY already (Node's HTTP server and ws do).
    perMessageDeflate: false,
    httpCompression: false,
    // JSON-only packets, the default text format without the per-packet binary scan; refuses
    // binary and malformed packets (shared/protocol/wire-parser.ts).
    parser: wireParser,
    maxHttpBufferSize: 1024 * 1024,
    pingInterval: 10_000,
    pingTimeout: 10_000,
  });

  io.use((socket, next) => {
    const tlsSocket = socket.request.socket as TLSSocket;
    const r = peerCheck(tlsSocket, opts, tls.caPem);
    if (!r.ok) {
      next(new Error(`refused: ${r.reason}`));
      return;
    }
    next();
  });

  io.on('connection', (socket: Socket) => {
    const tlsSocket = socket.request.socket as TLSSocket;
    const peer = {
      address: (tlsSocket.remoteAddress ?? '').replace(/^::ffff:/, ''),
      port: tlsSocket.remotePort ?? 0,
      localPort: tlsSocket.localPort ?? 0,
    };
    log.info({ peer }, 'panel connected');
    socket.emit(HELLO_EVENT, opts.hello());
    const emit = (topic: string, data: unknown): void => {
      socket.emit(AGENT_EVENT, { topic, data });
    };
    socket.onAny((event: unknown, ...args: unknown[]) => {
      const ack = args[args.length - 1];
      if (typeof ack !== 'function') return; // every RPC needs an ack; others are ignored
      const params = args.length > 1 ? args[0] : undefined;
      void opts.router.dispatch(event, params, { peer, emit }).then((reply) => {
        (ack as (r: unknown) => void)(reply);
      });
    });
    socket.on('disconnect', (reason) => log.info({ peer, reason }, 'panel disconnected'));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const enforceRevocations = (): void => {
    for (const s of io.sockets.sockets.values()) {
      const r = peerCheck(s.request.socket as TLSSocket, opts, tls.caPem);
      if (!r.ok) {
        log.warn({ reason: r.reason }, 'dropping a panel connection');
        s.disconnect(true);
      }
    }
  };

  return {
    port,
    broadcast(topic, data) {
      io.emit(AGENT_EVENT, { topic, data });
    },
    setTls(next) {
      tls = next;
      server.setSecureContext({ cert: next.certPem, key: next.keyPem, ca: next.caPem });
      enforceRevocations();
    },
    enforceRevocations,
    async close() {
      await io.close(); // closes the http server too
      server.closeAllConnections();
    },
  };
}
