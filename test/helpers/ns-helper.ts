// A small process that runs inside a network namespace for a test (started with
// `ip netns exec NS node --import tsx test/helpers/ns-helper.ts`). It reads one JSON request
// per line on stdin and answers one JSON line on stdout: it can listen on TCP ports, probe a TCP
// port (open / refused / timeout), and act as the panel (a real ConnectionManager over mutual TLS).
import { createInterface } from 'node:readline';
import net from 'node:net';
import { pino } from 'pino';
import { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName } from '../../shared/protocol/index.ts';

interface Req {
  id: number;
  op: string;
  [k: string]: unknown;
}

const servers: net.Server[] = [];
let manager: ConnectionManager | null = null;
/** Agent → panel notifications (`event` {topic, data}) received so far. */
const events: unknown[] = [];

function probe(host: string, port: number, localAddress: string | undefined, timeoutMs: number) {
  return new Promise<string>((resolve) => {
    const s = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('open');
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ECONNREFUSED' ? 'refused' : (e.code ?? e.message));
    });
  });
}

async function handle(r: Req): Promise<unknown> {
  switch (r.op) {
    case 'listen': {
      const srv = net.createServer((c) => {
        c.on('error', () => undefined); // the prober resets the connection at once
        c.end('hi');
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ port: r.port as number, host: r.host as string, ipv6Only: r.host === '::' }, () =>
          resolve(),
        );
      });
      servers.push(srv);
      return true;
    }
    case 'probe':
      return probe(
        r.host as string,
        r.port as number,
        r.localAddress as string | undefined,
        r.timeoutMs as number,
      );
    case 'panel': {
      const tls = r.tls as { certPem: string; keyPem: string; caPem: string };
      manager = new ConnectionManager({
        tls: () => tls,
        logger: pino({ level: 'silent' }),
        backoff: { minMs: 100, maxMs: 500 },
        connectTimeoutMs: 3000,
      });
      manager.on('agentEvent', (_hostId, e) => events.push(e));
      manager.add({ id: r.hostId as string, address: r.address as string, port: r.port as number });
      const st = await manager.waitForState(r.hostId as string, 'online', 15_000);
      return st.state;
    }
    case 'events':
      return events.splice(0);
    case 'call': {
      if (!manager) throw new Error('no panel connection');
      return manager.call(r.hostId as string, r.event as EventName, r.params as never);
    }
    default:
      throw new Error(`unknown op ${r.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const r = JSON.parse(line) as Req;
  handle(r).then(
    (result) => process.stdout.write(JSON.stringify({ id: r.id, result }) + '\n'),
    (e: unknown) => process.stdout.write(JSON.stringify({ id: r.id, error: (e as Error).message }) + '\n'),
  );
});
rl.on('close', () => {
  for (const s of servers) s.close();
  void (manager?.close() ?? Promise.resolve()).then(() => process.exit(0));
});
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
