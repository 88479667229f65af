// Jobs bench worker: the panel's real jobs engine in a process of its own (database, connection
// manager, registry, HostActions with the audit, Jobs), connected to every agent; answers
// "run a job" requests over IPC with the job's wall time and this process's CPU time.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ConnectionManager } from '../server/hosts/connection-manager.ts';
import { HostRegistry } from '../server/hosts/registry.ts';
import { openDatabase } from '../server/db/database.ts';
import { HostsRepo } from '../server/db/hosts.ts';
import { HostLabelsRepo } from '../server/db/labels.ts';
import { AuditLog } from '../server/db/audit.ts';
import { PanelEvents } from '../server/events.ts';
import { HostActions } from '../server/http/host-actions.ts';
import { Jobs } from '../server/jobs/engine.ts';

interface Spec {
  caFile: string;
  panelCertPem: string;
  panelKeyPem: string;
  targets: Array<{ hostId: string; port: number }>;
}
type Msg =
  | { cmd: 'connect'; specFile: string }
  | { cmd: 'job'; event: string; params: Record<string, unknown>; window: number }
  | { cmd: 'exit' };

const send = (m: unknown): void => {
  process.send?.(m);
};
const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-bench-jobs-'));
const logger = pino({ level: 'silent' });
let jobs: Jobs | null = null;
let manager: ConnectionManager | null = null;

process.on('message', (raw: unknown) => {
  const m = raw as Msg;
  void (async () => {
    if (m.cmd === 'connect') {
      const spec = JSON.parse(readFileSync(m.specFile, 'utf8')) as Spec;
      const caPem = readFileSync(spec.caFile, 'utf8');
      const db = openDatabase(path.join(dir, 'panel.db'));
      const repo = new HostsRepo(db);
      for (const t of spec.targets) {
        repo.insert({ id: t.hostId, name: t.hostId, address: '127.0.0.1', port: t.port });
        repo.markEnrolled(t.hostId, '01', Date.now() + 86_400_000);
      }
      const mgr = new ConnectionManager({
        tls: () => ({ certPem: spec.panelCertPem, keyPem: spec.panelKeyPem, caPem }),
        logger,
      });
      mgr.setMaxListeners(0);
      manager = mgr;
      const events = new PanelEvents();
      const registry = new HostRegistry(repo, mgr, events);
      const audit = new AuditLog(db);
      const actions = new HostActions(registry, audit, events);
      jobs = new Jobs({
        db,
        hosts: registry,
        labels: new HostLabelsRepo(db),
        actions,
        audit,
        events,
        logger,
        leaseMs: 15_000,
      });
      const t0 = Date.now();
      registry.connectAll();
      const until = Date.now() + 180_000;
      while (mgr.statuses().some((s) => s.state !== 'online')) {
        if (Date.now() > until) {
          send({ error: 'not every agent came online within 180 s' });
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      jobs.start();
      send({ connected: spec.targets.length, connectMs: Date.now() - t0 });
    } else if (m.cmd === 'job') {
      const j = jobs!;
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const row = j.create(
        { kind: 'cli', name: 'bench', role: 'admin' },
        { event: m.event, params: m.params, target: { all: true }, window: m.window },
      );
      const done = await j.waitFinished(row.id, 120_000);
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const cpu = process.cpuUsage(cpu0);
      const counts = j.store.counts(row.id);
      send({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000, state: done.state, counts });
    } else {
      await jobs?.close();
      await manager?.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  })();
});
send({ started: true });
