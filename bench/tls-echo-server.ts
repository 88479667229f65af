// Reference for the RPC benches: a raw TLS echo server in its own process, with the agent's
// certificate and the same mutual-TLS requirements (client certificate from the same CA).
//   node --import tsx bench/tls-echo-server.ts CERT KEY CA   → prints "listening PORT"
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';

const [certFile, keyFile, caFile] = process.argv.slice(2);
if (!certFile || !keyFile || !caFile) {
  process.stderr.write('usage: tls-echo-server.ts CERT KEY CA\n');
  process.exit(2);
}
const server = tls.createServer(
  {
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    ca: readFileSync(caFile),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  },
  (socket) => {
    socket.setNoDelay(true);
    socket.pipe(socket);
    socket.on('error', () => socket.destroy());
  },
);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
