// The client side of the raw TLS echo reference (bench/tls-echo-server.ts).
import tls from 'node:tls';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT, spawnUntil } from './lib.ts';

export interface EchoServer {
  port: number;
  proc: ChildProcess;
}

export async function startEchoServer(
  certFile: string,
  keyFile: string,
  caFile: string,
): Promise<EchoServer> {
  const s = await spawnUntil(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/tls-echo-server.ts'), certFile, keyFile, caFile],
    (l) => l.startsWith('listening '),
    { cwd: ROOT },
  );
  return { port: Number(s.line.split(' ')[1]), proc: s.proc };
}

export interface EchoClient {
  /** Sends one message and resolves when all of it came back. */
  roundTrip(msg: Buffer): Promise<void>;
  /** Sends `total` messages with `inFlight` outstanding at a time; resolves when all came back. */
  pipelined(msg: Buffer, total: number, inFlight: number): Promise<void>;
  close(): void;
}

export function connectEcho(
  port: number,
  tlsOpts: { cert: string; key: string; ca: string },
): Promise<EchoClient> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, ...tlsOpts, checkServerIdentity: () => undefined },
      () => {
        socket.setNoDelay(true);
        let pending = 0;
        let onDrained: (() => void) | null = null;
        socket.on('data', (chunk: Buffer) => {
          pending -= chunk.length;
          if (pending <= 0 && onDrained) {
            const f = onDrained;
            onDrained = null;
            f();
          }
        });
        const client: EchoClient = {
          roundTrip(msg) {
            return new Promise((res) => {
              pending += msg.length;
              onDrained = res;
              socket.write(msg);
            });
          },
          async pipelined(msg, total, inFlight) {
            // Keep `inFlight` messages outstanding: refill as bytes come back.
            let sent = 0;
            let received = 0;
            await new Promise<void>((res) => {
              const onData = (chunk: Buffer): void => {
                received += chunk.length;
                const done = Math.floor(received / msg.length);
                while (sent < total && sent - done < inFlight) {
                  socket.write(msg);
                  sent++;
                }
                if (received >= total * msg.length) {
                  socket.off('data', onData);
                  res();
                }
              };
              socket.on('data', onData);
              while (sent < Math.min(inFlight, total)) {
                socket.write(msg);
                sent++;
              }
            });
            pending = 0;
          },
          close() {
            socket.destroy();
          },
        };
        resolve(client);
      },
    );
    socket.once('error', reject);
  });
}
