// Fan-out bench worker: the panel side in its own process (so its RSS is the panel's alone): the
// real ConnectionManager links every agent — it dials them (forward) or its agent listener
// accepts them (reverse) — then answers "ping all" requests over IPC.
//   {cmd:'setup', specFile} → {listenPort}   (reverse: the listener is up, the hosts are known)
//   {cmd:'connect'}         → connect time and RSS once every agent is online
//   {cmd:'ping'}            → one `ping` to every agent: wall time and this process's CPU time
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { ConnectionManager } from '../server/hosts/connection-manager.ts';
import type { AgentListener } from '../server/hosts/agent-listener.ts';
import { allOnline, listenForAgents } from './panel-links.ts';
import type { LinkMode } from './fleet.ts';

interface Spec {
  caFile: string;
  panelCertPem: string;
  panelKeyPem: string;
  mode: LinkMode;
  /** Forward: the agents' ports; reverse: port 0. */
  targets: Array<{ hostId: string; port: number }>;
}
type Msg = { cmd: 'setup'; specFile: string } | { cmd: 'connect' } | { cmd: 'ping' } | { cmd: 'exit' };

const send = (m: unknown): void => {
  process.send?.(m);
};
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const logger = pino({ level: 'silent' });

let manager: ConnectionManager | null = null;
let listener: AgentListener | null = null;
let spec: Spec | null = null;
let before = { rss: 0, heapUsed: 0 };

process.on('message', (raw: unknown) => {
  const m = raw as Msg;
  void (async () => {
    if (m.cmd === 'setup') {
      const s = JSON.parse(readFileSync(m.specFile, 'utf8')) as Spec;
      spec = s;
      const tls = { certPem: s.panelCertPem, keyPem: s.panelKeyPem, caPem: readFileSync(s.caFile, 'utf8') };
      gc();
      before = process.memoryUsage();
      // Backoff, connect timeout and connect concurrency: the panel's defaults (server/main.ts).
      manager = new ConnectionManager({ tls: () => tls, logger });
      manager.setMaxListeners(0);
      if (s.mode === 'reverse') {
        listener = await listenForAgents(manager, tls, logger);
        for (const t of s.targets) manager.add({ id: t.hostId, mode: 'reverse' });
      }
      send({ listenPort: listener?.port ?? 0 });
    } else if (m.cmd === 'connect') {
      const mgr = manager!;
      const s = spec!;
      const ids = s.targets.map((t) => t.hostId);
      const online = allOnline(mgr, ids);
      // Forward: every host is added at once; the manager itself limits the handshakes in flight
      // (maxConcurrentConnects, default 50) so they do not time out in lock-step.
      if (s.mode === 'forward')
        for (const t of s.targets) mgr.add({ id: t.hostId, address: '127.0.0.1', port: t.port });
      let c: Awaited<typeof online>;
      try {
        c = await online;
      } catch (e) {
        send({ error: (e as Error).message });
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
      gc();
      const after = process.memoryUsage();
      send({
        connected: ids.length,
        ...c,
        rssBefore: before.rss,
        rssConnected: after.rss,
        heapBefore: before.heapUsed,
        heapConnected: after.heapUsed,
      });
    } else if (m.cmd === 'ping') {
      const mgr = manager!;
      const ids = spec!.targets.map((t) => t.hostId);
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const replies = await Promise.all(ids.map((id) => mgr.call(id, 'ping', {}, { timeoutMs: 30_000 })));
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const cpu = process.cpuUsage(cpu0);
      const ok = replies.filter((r) => r.ok).length;
      send({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000, ok, failed: replies.length - ok });
    } else {
      await manager?.close();
      await listener?.close();
      process.exit(0);
    }
  })();
});
send({ started: true });
