// Jobs bench worker: the panel's real jobs engine in a process of its own (database, connection
// manager, registry, HostActions with the audit, Jobs), linked to every agent — it dials them
// (forward) or its agent listener accepts them (reverse); answers "run a job" requests over IPC
// with the job's wall time and this process's CPU time.
//   {cmd:'setup', specFile} → {listenPort}   {cmd:'connect'} → {connectMs}   {cmd:'job', …}
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ConnectionManager } from '../server/hosts/connection-manager.ts';
import type { AgentListener } from '../server/hosts/agent-listener.ts';
import { HostRegistry } from '../server/hosts/registry.ts';
import { openDatabase } from '../server/db/database.ts';
import { HostsRepo } from '../server/db/hosts.ts';
import { HostLabelsRepo } from '../server/db/labels.ts';
import { AuditLog } from '../server/db/audit.ts';
import { PanelEvents } from '../server/events.ts';
import { HostActions } from '../server/http/host-actions.ts';
import { Jobs } from '../server/jobs/engine.ts';
import { allOnline, listenForAgents } from './panel-links.ts';
import type { LinkMode } from './fleet.ts';

interface Spec {
  caFile: string;
  panelCertPem: string;
  panelKeyPem: string;
  mode: LinkMode;
  targets: Array<{ hostId: string; port: number }>;
}
type Msg =
  | { cmd: 'setup'; specFile: string }
  | { cmd: 'connect' }
  | { cmd: 'job'; event: string; params: Record<string, unknown>; window: number }
  | { cmd: 'exit' };

const send = (m: unknown): void => {
  process.send?.(m);
};
const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-bench-jobs-'));
const logger = pino({ level: 'silent' });
let jobs: Jobs | null = null;
let manager: ConnectionManager | null = null;
let registry: HostRegistry | null = null;
let listener: AgentListener | null = null;
let ids: string[] = [];

process.on('message', (raw: unknown) => {
  const m = raw as Msg;
  void (async () => {
    if (m.cmd === 'setup') {
      const spec = JSON.parse(readFileSync(m.specFile, 'utf8')) as Spec;
      const tls = {
        certPem: spec.panelCertPem,
        keyPem: spec.panelKeyPem,
        caPem: readFileSync(spec.caFile, 'utf8'),
      };
      const db = openDatabase(path.join(dir, 'panel.db'));
      const repo = new HostsRepo(db);
      for (const t of spec.targets) {
        repo.insert({
          id: t.hostId,
          name: t.hostId,
          address: spec.mode === 'reverse' ? '' : '127.0.0.1',
          // A reverse host's row keeps the default agent port, as enrollment stores it.
          port: t.port || 7443,
          mode: spec.mode,
        });
        repo.markEnrolled(t.hostId, '01', Date.now() + 86_400_000);
      }
      ids = spec.targets.map((t) => t.hostId);
      const mgr = new ConnectionManager({ tls: () => tls, logger });
      mgr.setMaxListeners(0);
      manager = mgr;
      const events = new PanelEvents();
      registry = new HostRegistry(repo, mgr, events);
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
      if (spec.mode === 'reverse') {
        listener = await listenForAgents(mgr, tls, logger);
        registry.connectAll(); // reverse hosts: waiting for their agents
      }
      send({ listenPort: listener?.port ?? 0 });
    } else if (m.cmd === 'connect') {
      const online = allOnline(manager!, ids);
      if (!listener) registry!.connectAll();
      try {
        const c = await online;
        jobs!.start();
        send({ connected: ids.length, ...c });
      } catch (e) {
        send({ error: (e as Error).message });
      }
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
      await listener?.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  })();
});
send({ started: true });
