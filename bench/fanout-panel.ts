// Fan-out bench worker: the panel side in its own process (so its RSS is the panel's alone): the
// real ConnectionManager connects to every agent, then answers "ping all" requests over IPC.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { ConnectionManager, type HostStatus } from '../server/hosts/connection-manager.ts';

interface Spec {
  caFile: string;
  panelCertPem: string;
  panelKeyPem: string;
  targets: Array<{ hostId: string; port: number }>;
}
type Msg = { cmd: 'connect'; specFile: string } | { cmd: 'ping' } | { cmd: 'exit' };

const send = (m: unknown): void => {
  process.send?.(m);
};
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

let manager: ConnectionManager | null = null;
let ids: string[] = [];

process.on('message', (raw: unknown) => {
  const m = raw as Msg;
  void (async () => {
    if (m.cmd === 'connect') {
      const spec = JSON.parse(readFileSync(m.specFile, 'utf8')) as Spec;
      const caPem = readFileSync(spec.caFile, 'utf8');
      gc();
      const { rss: rssBefore, heapUsed: heapBefore } = process.memoryUsage();
      const mgr = new ConnectionManager({
        tls: () => ({ certPem: spec.panelCertPem, keyPem: spec.panelKeyPem, caPem }),
        logger: pino({ level: 'silent' }),
        // Backoff, connect timeout and connect concurrency: the panel's defaults (server/main.ts).
      });
      manager = mgr;
      mgr.setMaxListeners(0);
      ids = spec.targets.map((t) => t.hostId);
      // Every host is added at once: the manager itself limits the handshakes in flight
      // (maxConcurrentConnects, default 50) so they do not time out in lock-step.
      const t0 = process.hrtime.bigint();
      const online = new Set<string>();
      let connectFailures = 0;
      const all = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`only ${online.size} of ${ids.length} agents online after 180 s`)),
          180_000,
        );
        mgr.on('state', (s: HostStatus) => {
          if (s.state === 'online') online.add(s.id);
          else online.delete(s.id);
          if (s.state === 'offline' || s.state === 'refused') connectFailures++;
          if (online.size === ids.length) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      for (const t of spec.targets) mgr.add({ id: t.hostId, address: '127.0.0.1', port: t.port });
      try {
        await all;
      } catch (e) {
        send({ error: (e as Error).message });
        return;
      }
      const connectMs = Number(process.hrtime.bigint() - t0) / 1e6;
      await new Promise((r) => setTimeout(r, 500));
      gc();
      const { rss: rssConnected, heapUsed: heapConnected } = process.memoryUsage();
      send({
        connected: ids.length,
        connectMs,
        connectFailures,
        rssBefore,
        rssConnected,
        heapBefore,
        heapConnected,
      });
    } else if (m.cmd === 'ping') {
      const mgr = manager!;
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const replies = await Promise.all(ids.map((id) => mgr.call(id, 'ping', {}, { timeoutMs: 30_000 })));
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const cpu = process.cpuUsage(cpu0);
      const ok = replies.filter((r) => r.ok).length;
      send({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000, ok, failed: replies.length - ok });
    } else {
      await manager?.close();
      process.exit(0);
    }
  })();
});
send({ started: true });
