import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Server as IoServer } from 'socket.io';
import type { Logger } from 'pino';
import { wireParser } from '../shared/protocol/wire-parser.ts';
import { serverLinkSocket } from '../shared/link/socket-io.ts';
import type { AgentLinks, TlsMaterial } from './link.ts';

export type { TlsMaterial } from './link.ts';

export interface AgentServerOptions {
  host: string;
  port: number;
  /** The live links; their TLS material is served and followed on renewal. */
  links: AgentLinks;
  logger: Logger;
}

export interface AgentServer {
  port: number;
  close(): Promise<void>;
}

function peerCheck(socket: TLSSocket, links: AgentLinks): { ok: true } | { ok: false; reason: string } {
  if (!socket.authorized) {
    return {
      ok: false,
      reason: `TLS client authentication failed (${String(socket.authorizationError ?? 'no certificate')})`,
    };
  }
  // The panel is the TLS client here.
  return links.checkPanel(socket.getPeerCertificate(false)?.raw, 'clientAuth');
}

/**
 * The forward-mode transport of the agent: an HTTPS + Socket.IO server, WebSocket transport only,
 * mutual TLS required. A client is accepted only with a certificate that chains to the pinned
 * CA, carries urn:ponio:panel, is within its validity and is not revoked. Anything else is
 * dropped at the TLS layer and, should that ever be misconfigured, refused again in io.use
 * before any event handler runs. Accepted sockets are served by the links (link.ts).
 */
export async function startAgentServer(opts: AgentServerOptions): Promise<AgentServer> {
  const { links, logger: log } = opts;
  const tls = (t: TlsMaterial): { cert: string; key: string; ca: string } => ({
    cert: t.certPem,
    key: t.keyPem,
    ca: t.caPem,
  });
  const server = https.createServer({
    ...tls(links.tls),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  links.onTlsChange((next) => server.setSecureContext(tls(next)));
  server.on('secureConnection', (socket: TLSSocket) => {
    const r = peerCheck(socket, links);
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
    const r = peerCheck(socket.request.socket as TLSSocket, links);
    if (!r.ok) {
      next(new Error(`refused: ${r.reason}`));
      return;
    }
    next();
  });

  io.on('connection', (socket) => {
    const tlsSocket = socket.request.socket as TLSSocket;
    links.serve({
      socket: serverLinkSocket(socket),
      peer: {
        address: (tlsSocket.remoteAddress ?? '').replace(/^::ffff:/, ''),
        port: tlsSocket.remotePort ?? 0,
        localPort: tlsSocket.localPort ?? 0,
      },
      panelCert: () => tlsSocket.getPeerCertificate(false)?.raw,
      purpose: 'clientAuth',
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    async close() {
      await io.close(); // closes the http server too
      server.closeAllConnections();
    },
  };
}
