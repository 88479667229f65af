import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { issueCertificate } from '../../shared/pki/index.ts';
import type { RunningPanel } from '../../server/main.ts';
import { ROOT } from './agent-process.ts';

export interface FleetCall {
  hostId: string;
  event: string;
  start: number;
  end: number;
}

export interface Fleet {
  hostIds: string[];
  /** Fault injection in the agents' process. */
  set(o: { delayMs?: number; failHosts?: string[] }): Promise<void>;
  /** Calls the agents received since the last reset, and the most in flight at once. */
  stats(): Promise<{ maxInFlight: number; inFlight: number; calls: FleetCall[] }>;
  reset(): Promise<void>;
  /** SIGKILLs the agents' process (every host of the fleet goes offline). */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `count` real agents in one process (test/helpers/fleet-agents.ts), enrolls them in the
 * panel's database (certificates from the panel CA) and waits until all are online.
 */
export async function startFleet(panel: RunningPanel, prefix: string, count: number): Promise<Fleet> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `ponio-fleet-${prefix}-`));
  const caFile = path.join(dir, 'ca.crt');
  writeFileSync(caFile, panel.ctx.pki.ca.certPem);
  const agents: { hostId: string; certFile: string; keyFile: string; serial: string; notAfter: number }[] =
    [];
  for (let i = 0; i < count; i++) {
    const hostId = `${prefix}${String(i).padStart(3, '0')}`;
    const issued = await issueCertificate({
      ca: panel.ctx.pki.ca,
      role: { kind: 'host', hostId },
    });
    const certFile = path.join(dir, `${hostId}.crt`);
    const keyFile = path.join(dir, `${hostId}.key`);
    writeFileSync(certFile, issued.certPem);
    writeFileSync(keyFile, issued.keyPem, { mode: 0o600 });
    agents.push({ hostId, certFile, keyFile, serial: issued.serial, notAfter: issued.notAfter.getTime() });
  }
  const specFile = path.join(dir, 'spec.json');
  writeFileSync(specFile, JSON.stringify({ caFile, baseDir: path.join(dir, 'agents'), agents }));
  const proc: ChildProcess = fork(path.join(ROOT, 'test/helpers/fleet-agents.ts'), [specFile], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const queue: ((m: Record<string, unknown>) => void)[] = [];
  proc.on('message', (m) => queue.shift()?.(m as Record<string, unknown>));
  const next = (timeoutMs = 60_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the fleet process did not answer')), timeoutMs);
      void exited.then(() => reject(new Error('the fleet process exited')));
      queue.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  const ask = (msg: object): Promise<Record<string, unknown>> => {
    const p = next();
    proc.send(msg);
    return p;
  };
  const ready = (await next(120_000)).ready as { hostId: string; port: number }[];
  const repo = panel.ctx.hosts.repo;
  for (const r of ready) {
    const a = agents.find((x) => x.hostId === r.hostId);
    if (!a) throw new Error(`unknown fleet host ${r.hostId}`);
    repo.insert({ id: r.hostId, name: r.hostId, address: '127.0.0.1', port: r.port });
    repo.markEnrolled(r.hostId, a.serial, a.notAfter);
    const row = repo.get(r.hostId);
    if (row) panel.ctx.hosts.connect(row);
  }
  for (const r of ready) await panel.ctx.hosts.manager.waitForState(r.hostId, 'online', 60_000);
  // The panel pushes its revocation list to each host that comes online ('set revocations', an
  // fsynced write on the agent): wait until every push is done, so none lands in a test's counts.
  const settleUntil = Date.now() + 60_000;
  for (;;) {
    const s = (await ask({ op: 'stats' })) as { inFlight: number; calls: FleetCall[] };
    const pushed = new Set(s.calls.filter((c) => c.event === 'set revocations').map((c) => c.hostId));
    if (s.inFlight === 0 && ready.every((r) => pushed.has(r.hostId))) break;
    if (Date.now() > settleUntil)
      throw new Error(
        `the revocation push reached ${pushed.size} of ${ready.length} fleet hosts within 60 s`,
      );
    await new Promise((res) => setTimeout(res, 50));
  }
  await ask({ op: 'reset' });
  const killProc = async (signal: NodeJS.Signals): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return {
    hostIds: ready.map((r) => r.hostId),
    async set(o) {
      await ask({ op: 'set', ...o });
    },
    async stats() {
      return (await ask({ op: 'stats' })) as unknown as Awaited<ReturnType<Fleet['stats']>>;
    },
    async reset() {
      await ask({ op: 'reset' });
    },
    kill: () => killProc('SIGKILL'),
    async stop() {
      await killProc('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The most calls in flight at once among `calls` (from their start and end times). */
export function maxOverlap(calls: readonly FleetCall[]): number {
  const points = calls.flatMap((c) => [
    { t: c.start, d: 1 },
    { t: c.end, d: -1 },
  ]);
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  let cur = 0;
  let max = 0;
  for (const p of points) {
    cur += p.d;
    max = Math.max(max, cur);
  }
  return max;
}
