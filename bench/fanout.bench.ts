// fanout: one `ping` to N agents (N = 100, 500, 1000) until every reply is in. The agents are
// real (agent/main.ts startAgent), packed 125 per process, each with its own port and
// certificate; the panel's ConnectionManager runs in a process of its own, so its RSS per
// connected agent can be read: `panel_rss_per_agent_kb` half a second after the last agent came
// online and a GC. It includes V8's young-generation growth during the connection storm (a fixed
// amount, up to ~48 MB, that weighs most at small N and is given back only at a later full GC
// under a low allocation rate); `panel_heap_per_agent_kb` is the JS heap retained per connection.
// `panel_cpu_ms_p50` is the panel's CPU time for one fan-out round.
import { spawn, type ChildProcess } from 'node:child_process';
import { unitRuntime } from './agent-footprint.bench.ts';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  QUICK,
  ROOT,
  makePki,
  median,
  round,
  rssBytes,
  spawnUntil,
  stopChild,
  tempDir,
  withoutServices,
  type Bench,
  type BenchResult,
} from './lib.ts';

// FANOUT_SIZES=1000 (comma-separated) runs only those sizes (for working on one of them).
const SIZES = process.env.FANOUT_SIZES
  ? process.env.FANOUT_SIZES.split(',').map(Number)
  : QUICK
    ? [20, 50]
    : [100, 500, 1000];
const PER_PROCESS = QUICK ? 25 : 125;
const ROUNDS = QUICK ? 1 : 3;

interface PanelWorker {
  proc: ChildProcess;
  request(msg: unknown): Promise<Record<string, unknown>>;
}

/** The panel runs with the node flags of its shipped unit (deploy/systemd/ponio-panel.service). */
const PANEL_NODE_FLAGS = unitRuntime('ponio-panel.service').nodeFlags;

function startPanelWorker(): Promise<PanelWorker> {
  const proc = spawn(
    process.execPath,
    [...PANEL_NODE_FLAGS, '--expose-gc', '--import', 'tsx', path.join(ROOT, 'bench/fanout-panel.ts')],
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
  return request(null).then(() => ({ proc, request }));
}

export const bench: Bench = {
  name: 'fanout',
  async run() {
    const max = Math.max(...SIZES);
    const pki = await makePki();
    const work = tempDir('fanout');
    const agentProcs: ChildProcess[] = [];
    const results: BenchResult[] = [];
    try {
      const agents: Array<{ hostId: string; certFile: string; keyFile: string }> = [];
      for (let i = 0; i < max; i++) {
        const hostId = `fan${String(i).padStart(4, '0')}`;
        const f = await pki.agent(hostId);
        agents.push({ hostId, certFile: f.certFile, keyFile: f.keyFile });
      }
      const targets: Array<{ hostId: string; port: number }> = [];
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
      for (const s of started) targets.push(...s.ready);
      targets.sort((a, b) => a.hostId.localeCompare(b.hostId));
      const agentRss = agentProcs.reduce((sum, p) => sum + (rssBytes(p.pid!) ?? 0), 0);

      let prev: { n: number; delta: number } | null = null;
      for (const n of SIZES) {
        const panel = await startPanelWorker();
        try {
          const specFile = path.join(work, `panel-${n}.json`);
          writeFileSync(
            specFile,
            JSON.stringify({
              caFile: pki.caFile,
              panelCertPem: pki.panel.certPem,
              panelKeyPem: pki.panel.keyPem,
              targets: targets.slice(0, n),
            }),
          );
          let c: Record<string, unknown>;
          try {
            c = await panel.request({ cmd: 'connect', specFile });
          } catch (e) {
            results.push({ bench: 'fanout', agents: n, error: (e as Error).message });
            continue;
          }
          const walls: number[] = [];
          const cpus: number[] = [];
          let failed = 0;
          await panel.request({ cmd: 'ping' }); // warm-up round
          for (let r = 0; r < ROUNDS; r++) {
            const p = await panel.request({ cmd: 'ping' });
            walls.push(p.wallMs as number);
            cpus.push(p.cpuMs as number);
            failed += p.failed as number;
          }
          const perAgentKb = (rss: unknown): number => ((rss as number) - (c.rssBefore as number)) / n / 1024;
          const rssKb = perAgentKb(c.rssConnected);
          // What one more agent costs: the growth between this N and the previous one (the fixed
          // start-up cost of a connection storm cancels out).
          const delta = (c.rssConnected as number) - (c.rssBefore as number);
          const marginalKb = prev ? (delta - prev.delta) / (n - prev.n) / 1024 : null;
          prev = { n, delta };
          const wall = median(walls);
          results.push({
            bench: 'fanout',
            agents: n,
            agent_processes: Math.ceil(n / PER_PROCESS),
            rounds: ROUNDS,
            connect_all_s: round((c.connectMs as number) / 1000, 2),
            connect_failures: c.connectFailures,
            ping_all_ms_p50: round(wall, 1),
            ping_all_ms_max: round(Math.max(...walls), 1),
            panel_cpu_ms_p50: round(median(cpus), 1),
            failed,
            panel_rss_mb: round((c.rssConnected as number) / 2 ** 20, 1),
            panel_rss_per_agent_kb: round(rssKb, 1),
            ...(marginalKb === null ? {} : { panel_rss_marginal_kb_per_agent: round(marginalKb, 1) }),
            panel_heap_per_agent_kb: round(
              ((c.heapConnected as number) - (c.heapBefore as number)) / n / 1024,
              1,
            ),
            agent_rss_per_agent_kb: round(agentRss / max / 1024, 1),
            target: 'ping all <= 1000 ms (N=1000), <= 100 KB panel RSS per agent',
            meets_target: (n < 1000 || wall <= 1000) && rssKb <= 100 && failed === 0,
          });
        } finally {
          panel.proc.send({ cmd: 'exit' });
          await stopChild(panel.proc, 5_000);
        }
      }
      return results;
    } finally {
      await Promise.all(agentProcs.map((p) => stopChild(p, 10_000)));
      rmSync(work, { recursive: true, force: true });
      pki.cleanup();
    }
  },
};
