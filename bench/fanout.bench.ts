// fanout: one `ping` to N agents (N = 100, 500, 1000) until every reply is in, over forward links
// (the panel dials each agent) and over reverse links (each agent dials the panel's agent
// listener; N = 1000). The agents are real (agent/main.ts startAgent), packed 125 per process,
// each with its own certificate (bench/fleet.ts); the panel's ConnectionManager — and for reverse
// links its agent listener — runs in a process of its own (bench/fanout-panel.ts), so its RSS
// per connected agent can be read: `panel_rss_per_agent_kb` half a second after the last agent
// came online and a GC. It includes V8's young-generation growth during the connection storm (a
// fixed amount, up to ~48 MB, that weighs most at small N and is given back only at a later full
// GC under a low allocation rate); `panel_heap_per_agent_kb` is the JS heap retained per
// connection. `panel_cpu_ms_p50` is the panel's CPU time for one fan-out round.
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  QUICK,
  makePki,
  median,
  round,
  tempDir,
  type Bench,
  type BenchPki,
  type BenchResult,
} from './lib.ts';
import { fleetCerts, startAgentFleet, startPanelWorker, type LinkMode } from './fleet.ts';

const sizes = (env: string | undefined, full: number[], quick: number[]): number[] =>
  env !== undefined ? env.split(',').filter(Boolean).map(Number) : QUICK ? quick : full;
// FANOUT_SIZES=1000 / FANOUT_REVERSE_SIZES=1000 (comma-separated; empty = none) run only those.
const SIZES = sizes(process.env.FANOUT_SIZES, [100, 500, 1000], [20, 50]);
const REVERSE_SIZES = sizes(process.env.FANOUT_REVERSE_SIZES, [1000], [50]);
const PER_PROCESS = QUICK ? 25 : 125;
const ROUNDS = QUICK ? 1 : 3;

/** One panel worker linked to `targets`: connect, a warm-up round, ROUNDS measured rounds. */
async function measure(opts: {
  pki: BenchPki;
  work: string;
  mode: LinkMode;
  targets: Array<{ hostId: string; port: number }>;
  /** Reverse: starts the agents once the listener is up (they dial its port). */
  startAgents?: (listenPort: number) => Promise<{ rss(): number; stop(): Promise<void> }>;
  /** Forward: RSS per agent of the shared fleet (bytes). */
  agentRssPerAgent: () => number;
  prev: { n: number; delta: number } | null;
}): Promise<{ result: BenchResult; delta: number }> {
  const n = opts.targets.length;
  const panel = await startPanelWorker('fanout-panel.ts');
  let agents: { rss(): number; stop(): Promise<void> } | null = null;
  try {
    const specFile = path.join(opts.work, `panel-${opts.mode}-${n}.json`);
    writeFileSync(
      specFile,
      JSON.stringify({
        caFile: opts.pki.caFile,
        panelCertPem: opts.pki.panel.certPem,
        panelKeyPem: opts.pki.panel.keyPem,
        mode: opts.mode,
        targets: opts.targets,
      }),
    );
    const setup = await panel.request({ cmd: 'setup', specFile });
    if (opts.startAgents) agents = await opts.startAgents(setup.listenPort as number);
    const c = await panel.request({ cmd: 'connect' });
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
    const delta = (c.rssConnected as number) - (c.rssBefore as number);
    const rssKb = delta / n / 1024;
    // What one more agent costs: the growth between this N and the previous one (the fixed
    // start-up cost of a connection storm cancels out).
    const marginalKb = opts.prev ? (delta - opts.prev.delta) / (n - opts.prev.n) / 1024 : null;
    const wall = median(walls);
    const agentRss = agents ? agents.rss() / n : opts.agentRssPerAgent();
    return {
      delta,
      result: {
        bench: 'fanout',
        links: opts.mode,
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
        agent_rss_per_agent_kb: round(agentRss / 1024, 1),
        target: 'ping all <= 1000 ms (N=1000), <= 100 KB panel RSS per agent',
        meets_target: (n < 1000 || wall <= 1000) && rssKb <= 100 && failed === 0,
      },
    };
  } finally {
    await panel.stop();
    await agents?.stop();
  }
}

export const bench: Bench = {
  name: 'fanout',
  async run() {
    const max = Math.max(0, ...SIZES, ...REVERSE_SIZES);
    const pki = await makePki();
    const work = tempDir('fanout');
    const results: BenchResult[] = [];
    const run = async (
      what: () => Promise<{ result: BenchResult; delta: number }>,
      n: number,
      mode: LinkMode,
    ) => {
      try {
        return await what();
      } catch (e) {
        results.push({ bench: 'fanout', links: mode, agents: n, error: (e as Error).message });
        return null;
      }
    };
    try {
      const certs = await fleetCerts(pki, 'fan', max);
      if (SIZES.length > 0) {
        // Forward: one fleet of listening agents; each N gets a fresh panel.
        const fleet = await startAgentFleet({
          pki,
          work,
          certs: certs.slice(0, Math.max(...SIZES)),
          perProcess: PER_PROCESS,
        });
        try {
          let prev: { n: number; delta: number } | null = null;
          for (const n of SIZES) {
            const targets = fleet.targets.slice(0, n);
            const out = await run(
              () =>
                measure({
                  pki,
                  work,
                  mode: 'forward',
                  targets,
                  agentRssPerAgent: () => fleet.rss() / fleet.targets.length,
                  prev,
                }),
              n,
              'forward',
            );
            if (!out) continue;
            results.push(out.result);
            prev = { n, delta: out.delta };
          }
        } finally {
          await fleet.stop();
        }
      }
      // Reverse: the agents dial the panel worker's listener, so each N gets a fresh fleet too.
      let prev: { n: number; delta: number } | null = null;
      for (const n of REVERSE_SIZES) {
        const mine = certs.slice(0, n);
        const out = await run(
          () =>
            measure({
              pki,
              work,
              mode: 'reverse',
              targets: mine.map((c) => ({ hostId: c.hostId, port: 0 })),
              startAgents: (port) =>
                startAgentFleet({
                  pki,
                  work,
                  certs: mine,
                  perProcess: PER_PROCESS,
                  connect: `wss://127.0.0.1:${port}`,
                  tag: `rev${n}`,
                }),
              agentRssPerAgent: () => 0,
              prev,
            }),
          n,
          'reverse',
        );
        if (!out) continue;
        results.push(out.result);
        prev = { n, delta: out.delta };
      }
      return results;
    } finally {
      rmSync(work, { recursive: true, force: true });
      pki.cleanup();
    }
  },
};
