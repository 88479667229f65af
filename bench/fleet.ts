// The multi-agent set-up shared by the fanout and jobs benches: many real agents packed into a
// few processes (bench/fanout-agents.ts), each with its own certificate, in forward mode (each
// listens on its own loopback port) or reverse mode (each dials the panel worker's agent
// listener); and a panel worker process (bench/fanout-panel.ts, bench/jobs-panel.ts) driven over
// IPC, started with the node flags of the shipped panel unit.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { unitRuntime } from './agent-footprint.bench.ts';
import { ROOT, rssBytes, spawnUntil, stopChild, withoutServices, type BenchPki } from './lib.ts';

export type LinkMode = 'forward' | 'reverse';

export interface FleetCert {
  hostId: string;
  certFile: string;
  keyFile: string;
}

/** Issues `count` host certificates named PREFIX0000, PREFIX0001 … */
export async function fleetCerts(pki: BenchPki, prefix: string, count: number): Promise<FleetCert[]> {
  const out: FleetCert[] = [];
  for (let i = 0; i < count; i++) {
    const hostId = `${prefix}${String(i).padStart(4, '0')}`;
    const f = await pki.agent(hostId);
    out.push({ hostId, certFile: f.certFile, keyFile: f.keyFile });
  }
  return out;
}

export interface AgentFleet {
  /** Forward mode: each agent's listening port; reverse mode: port 0 (the agent dials). */
  targets: Array<{ hostId: string; port: number }>;
  /** Summed RSS of the agent processes now. */
  rss(): number;
  stop(): Promise<void>;
}

/**
 * Starts the agents `perProcess` to a process, in a mount namespace where the service programs
 * are hidden (every agent offers the system module only). `connect` (a wss:// URL) makes them
 * reverse-mode agents dialing it.
 */
export async function startAgentFleet(opts: {
  pki: BenchPki;
  work: string;
  certs: readonly FleetCert[];
  perProcess: number;
  connect?: string;
  /** Distinguishes the spec files of several fleets in one work dir. */
  tag?: string;
}): Promise<AgentFleet> {
  const procs: ChildProcess[] = [];
  const chunks: FleetCert[][] = [];
  for (let i = 0; i < opts.certs.length; i += opts.perProcess)
    chunks.push(opts.certs.slice(i, i + opts.perProcess));
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => stopChild(p, 10_000)));
  };
  try {
    const started = await Promise.all(
      chunks.map(async (chunk, n) => {
        const specFile = path.join(opts.work, `agents-${opts.tag ?? 'fleet'}-${n}.json`);
        writeFileSync(
          specFile,
          JSON.stringify({
            caFile: opts.pki.caFile,
            baseDir: path.join(opts.work, opts.tag ?? 'fleet'),
            agents: chunk,
            ...(opts.connect ? { connect: opts.connect } : {}),
          }),
        );
        const cmd = withoutServices(process.execPath, [
          '--import',
          'tsx',
          path.join(ROOT, 'bench/fanout-agents.ts'),
          specFile,
        ]);
        const s = await spawnUntil(cmd.file, cmd.args, (l) => l.startsWith('{"ready"'), {
          cwd: ROOT,
          timeoutMs: 180_000,
        });
        procs.push(s.proc);
        return JSON.parse(s.line) as { ready: Array<{ hostId: string; port: number }> };
      }),
    );
    const targets = started.flatMap((s) => s.ready).sort((a, b) => a.hostId.localeCompare(b.hostId));
    return {
      targets,
      rss: () => procs.reduce((sum, p) => sum + (rssBytes(p.pid ?? 0) ?? 0), 0),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface PanelWorker {
  proc: ChildProcess;
  /** Sends a message and resolves with the worker's reply (rejects on `{error}` or exit). */
  request(msg: unknown): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** The panel runs with the node flags of its shipped unit (deploy/systemd/ponio-panel.service). */
const PANEL_NODE_FLAGS = unitRuntime('ponio-panel.service').nodeFlags;

/** Starts a panel worker script (bench/*-panel.ts) and waits for its `{started}` message. */
export async function startPanelWorker(script: string): Promise<PanelWorker> {
  const proc = spawn(
    process.execPath,
    [
      ...PANEL_NODE_FLAGS,
      ...(process.env.BENCH_PANEL_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PANEL_PROF}`]
        : []),
      '--expose-gc',
      '--import',
      'tsx',
      path.join(ROOT, 'bench', script),
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  const queue: Array<(m: Record<string, unknown>) => void> = [];
  proc.on('message', (m) => queue.shift()?.(m as Record<string, unknown>));
  const request = (msg: unknown): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const onExit = (): void => reject(new Error('the panel worker exited'));
      proc.once('exit', onExit);
      queue.push((m) => {
        proc.off('exit', onExit);
        if (typeof m.error === 'string') reject(new Error(m.error));
        else resolve(m);
      });
      if (msg !== null) proc.send(msg as object);
    });
  await request(null);
  return {
    proc,
    request,
    async stop() {
      // Asked first, so the worker closes its links (and writes a --cpu-prof profile) itself.
      if (proc.connected && proc.exitCode === null) {
        const exited = new Promise<void>((r) => proc.once('exit', () => r()));
        proc.send({ cmd: 'exit' });
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      }
      await stopChild(proc, 5_000);
    },
  };
}
