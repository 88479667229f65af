// Second reference for rpc-latency: the same transport as PonIO (HTTPS + Socket.IO, WebSocket
// only, mutual TLS with the agent's certificate) answering every event's ack at once, with no
// PonIO code in between. PonIO's ping minus this = the cost of PonIO's own layers.
// Socket.IO's default packet parser, unless --wire-parser (PonIO's, shared/protocol/wire-parser.ts).
//   node --import tsx bench/sio-echo-server.ts CERT KEY CA [--wire-parser]   → prints "listening PORT"
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { wireParser } from '../shared/protocol/wire-parser.ts';

const [certFile, keyFile, caFile, mode] = process.argv.slice(2);
if (!certFile || !keyFile || !caFile) {
  process.stderr.write('usage: sio-echo-server.ts CERT KEY CA [--wire-parser]\n');
  process.exit(2);
}
const server = https.createServer({
  cert: readFileSync(certFile),
  key: readFileSync(keyFile),
  ca: readFileSync(caFile),
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2',
});
// The same engine options as the agent (agent/server.ts).
const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  ...(mode === '--wire-parser' ? { parser: wireParser } : {}),
});
io.on('connection', (socket) => {
  socket.onAny((_event: unknown, ...args: unknown[]) => {
    const ack = args[args.length - 1];
    // A reply of the same shape and size as the agent's `ping`.
    if (typeof ack === 'function')
      (ack as (r: unknown) => void)({
        ok: true,
        data: { pong: true, time: Date.now(), agentVersion: '0.1.0' },
      });
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  void io.close(() => process.exit(0));
});
