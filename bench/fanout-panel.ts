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
const CONNECT_WAVE = 50;
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
      const rssBefore = process.memoryUsage().rss;
      const mgr = new ConnectionManager({
        tls: () => ({ certPem: spec.panelCertPem, keyPem: spec.panelKeyPem, caPem }),
        logger: pino({ level: 'silent' }),
        backoff: { minMs: 200, maxMs: 2_000 },
        connectTimeoutMs: 20_000,
      });
      manager = mgr;
      mgr.setMaxListeners(0);
      ids = spec.targets.map((t) => t.hostId);
      // Connect in waves of CONNECT_WAVE: the connection manager itself starts every connection
      // at once, and a thousand simultaneous TLS handshakes on a small machine time out and
      // retry in lock-step (reported to the panel owners). Only the ping is measured.
      const t0 = process.hrtime.bigint();
      const online = new Set<string>();
      let waiting: { need: number; resolve: () => void } | null = null;
      mgr.on('state', (s: HostStatus) => {
        if (s.state === 'online') online.add(s.id);
        else online.delete(s.id);
        if (waiting && online.size >= waiting.need) {
          const w = waiting;
          waiting = null;
          w.resolve();
        }
      });
      try {
        for (let i = 0; i < spec.targets.length; i += CONNECT_WAVE) {
          const wave = spec.targets.slice(i, i + CONNECT_WAVE);
          const need = i + wave.length;
          const done = new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`only ${online.size} of ${need} agents online after 60 s`)),
              60_000,
            );
            waiting = {
              need,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            };
          });
          for (const t of wave) mgr.add({ id: t.hostId, address: '127.0.0.1', port: t.port });
          if (online.size >= need) waiting = null;
          else await done;
        }
      } catch (e) {
        send({ error: (e as Error).message });
        return;
      }
      const connectMs = Number(process.hrtime.bigint() - t0) / 1e6;
      await new Promise((r) => setTimeout(r, 500));
      gc();
      send({ connected: ids.length, connectMs, rssBefore, rssAfter: process.memoryUsage().rss });
    } else if (m.cmd === 'ping') {
      const mgr = manager!;
      const t0 = process.hrtime.bigint();
      const replies = await Promise.all(ids.map((id) => mgr.call(id, 'ping', {}, { timeoutMs: 30_000 })));
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      send({ wallMs, ok: replies.filter((r) => r.ok).length, failed: replies.filter((r) => !r.ok).length });
    } else {
      await manager?.close();
      process.exit(0);
    }
  })();
});
send({ started: true });
