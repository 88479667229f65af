// jobs: one `ping` job (the agents here offer only the system module, so no `block ip`) on N
// real agents (N = 1000) with a window of 100, through the panel's real jobs engine
// (bench/jobs-panel.ts: database, HostActions with the audit of every host call, stored per-host
// results), in a process of its own. Reports the job's wall time from POST to the last host
// recorded and the panel's CPU time per host. Forward links only (reverse links: not measured).
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  QUICK,
  ROOT,
  makePki,
  median,
  round,
  spawnUntil,
  stopChild,
  tempDir,
  withoutServices,
  type Bench,
  type BenchResult,
} from './lib.ts';
import { unitRuntime } from './agent-footprint.bench.ts';

const N = process.env.JOBS_AGENTS ? Number(process.env.JOBS_AGENTS) : QUICK ? 50 : 1000;
const WINDOW = QUICK ? 10 : 100;
const PER_PROCESS = QUICK ? 25 : 125;
const ROUNDS = QUICK ? 1 : 3;
const PANEL_NODE_FLAGS = unitRuntime('ponio-panel.service').nodeFlags;

function startPanelWorker(): Promise<{
  proc: ChildProcess;
  request(msg: unknown): Promise<Record<string, unknown>>;
}> {
  const proc = spawn(
    process.execPath,
    [...PANEL_NODE_FLAGS, '--import', 'tsx', path.join(ROOT, 'bench/jobs-panel.ts')],
    {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    },
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
  return request(null).then(() => ({ proc, request }));
}

export const bench: Bench = {
  name: 'jobs',
  async run() {
    const pki = await makePki();
    const work = tempDir('jobs');
    const agentProcs: ChildProcess[] = [];
    const results: BenchResult[] = [];
    try {
      const agents: Array<{ hostId: string; certFile: string; keyFile: string }> = [];
      for (let i = 0; i < N; i++) {
        const hostId = `job${String(i).padStart(4, '0')}`;
        const f = await pki.agent(hostId);
        agents.push({ hostId, certFile: f.certFile, keyFile: f.keyFile });
      }
      const chunks: (typeof agents)[] = [];
      for (let i = 0; i < agents.length; i += PER_PROCESS) chunks.push(agents.slice(i, i + PER_PROCESS));
      const started = await Promise.all(
        chunks.map(async (chunk, n) => {
          const specFile = path.join(work, `agents-${n}.json`);
          writeFileSync(specFile, JSON.stringify({ caFile: pki.caFile, baseDir: work, agents: chunk }));
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
          agentProcs.push(s.proc);
          return JSON.parse(s.line) as { ready: Array<{ hostId: string; port: number }> };
        }),
      );
      const targets = started.flatMap((s) => s.ready);
      const panel = await startPanelWorker();
      try {
        const specFile = path.join(work, 'panel.json');
        writeFileSync(
          specFile,
          JSON.stringify({
            caFile: pki.caFile,
            panelCertPem: pki.panel.certPem,
            panelKeyPem: pki.panel.keyPem,
            targets,
          }),
        );
        const c = await panel.request({ cmd: 'connect', specFile });
        const job = { cmd: 'job', event: 'ping', params: {}, window: WINDOW };
        await panel.request(job); // warm-up
        const walls: number[] = [];
        const cpus: number[] = [];
        let notOk = 0;
        for (let r = 0; r < ROUNDS; r++) {
          const out = await panel.request(job);
          walls.push(out.wallMs as number);
          cpus.push(out.cpuMs as number);
          notOk += N - ((out.counts as { ok: number }).ok ?? 0);
        }
        const wall = median(walls);
        results.push({
          bench: 'jobs',
          agents: N,
          window: WINDOW,
          event: 'ping',
          rounds: ROUNDS,
          connect_all_s: round((c.connectMs as number) / 1000, 2),
          job_wall_ms_p50: round(wall, 1),
          job_wall_ms_max: round(Math.max(...walls), 1),
          panel_cpu_ms_p50: round(median(cpus), 1),
          panel_cpu_us_per_host: round((median(cpus) * 1000) / N, 1),
          hosts_not_ok: notOk,
          links: 'forward',
          target: 'job on 1000 agents, window 100: <= 2000 ms',
          meets_target: (N < 1000 || wall <= 2000) && notOk === 0,
        });
      } finally {
        panel.proc.send({ cmd: 'exit' });
        await stopChild(panel.proc, 5_000);
      }
      return results;
    } finally {
      await Promise.all(agentProcs.map((p) => stopChild(p, 10_000)));
      rmSync(work, { recursive: true, force: true });
      pki.cleanup();
    }
  },
};
