// jobs: one `ping` job (the agents here offer only the system module, so no `block ip`) on N
// real agents (N = 1000) with a window of 100, through the panel's real jobs engine
// (bench/jobs-panel.ts: database, HostActions with the audit of every host call, stored per-host
// results), in a process of its own; over forward links and over reverse links (the agents dial
// the worker's agent listener). Reports the job's wall time from creating it to the last host
// recorded and the panel's CPU time per host. Agents and panel worker: bench/fleet.ts.
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { QUICK, makePki, median, round, tempDir, type Bench, type BenchResult } from './lib.ts';
import { fleetCerts, startAgentFleet, startPanelWorker, type AgentFleet, type LinkMode } from './fleet.ts';

const N = process.env.JOBS_AGENTS ? Number(process.env.JOBS_AGENTS) : QUICK ? 50 : 1000;
const WINDOW = QUICK ? 10 : 100;
const PER_PROCESS = QUICK ? 25 : 125;
const ROUNDS = QUICK ? 1 : 3;
// JOBS_LINKS=forward (or reverse) measures only that direction.
const MODES: LinkMode[] = process.env.JOBS_LINKS
  ? [process.env.JOBS_LINKS as LinkMode]
  : ['forward', 'reverse'];

export const bench: Bench = {
  name: 'jobs',
  async run() {
    const pki = await makePki();
    const work = tempDir('jobs');
    const results: BenchResult[] = [];
    try {
      const certs = await fleetCerts(pki, 'job', N);
      for (const mode of MODES) {
        let fleet: AgentFleet | null = null;
        const panel = await startPanelWorker('jobs-panel.ts');
        try {
          // Forward: the agents listen first and the worker dials their ports; reverse: the
          // worker's listener is up first and the agents dial it.
          if (mode === 'forward')
            fleet = await startAgentFleet({ pki, work, certs, perProcess: PER_PROCESS, tag: 'fwd' });
          const targets = fleet ? fleet.targets : certs.map((c) => ({ hostId: c.hostId, port: 0 }));
          const specFile = path.join(work, `panel-${mode}.json`);
          writeFileSync(
            specFile,
            JSON.stringify({
              caFile: pki.caFile,
              panelCertPem: pki.panel.certPem,
              panelKeyPem: pki.panel.keyPem,
              mode,
              targets,
            }),
          );
          const setup = await panel.request({ cmd: 'setup', specFile });
          if (mode === 'reverse')
            fleet = await startAgentFleet({
              pki,
              work,
              certs,
              perProcess: PER_PROCESS,
              connect: `wss://127.0.0.1:${String(setup.listenPort)}`,
              tag: 'rev',
            });
          const c = await panel.request({ cmd: 'connect' });
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
            links: mode,
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
            target: 'job on 1000 agents, window 100: <= 2000 ms',
            meets_target: (N < 1000 || wall <= 2000) && notOk === 0,
          });
        } catch (e) {
          results.push({ bench: 'jobs', links: mode, agents: N, error: (e as Error).message });
        } finally {
          await panel.stop();
          await fleet?.stop();
        }
      }
      return results;
    } finally {
      rmSync(work, { recursive: true, force: true });
      pki.cleanup();
    }
  },
};
