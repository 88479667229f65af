// agent-footprint: idle RSS and start-to-ready time of the BUNDLED agent (dist's
// ponio-agent.cjs, started with the node flags and environment of deploy/systemd/ponio-agent.service)
// next to a bare `node -e` in the same run. The agent runs on a host without any of its services
// (they are hidden in a private mount namespace), so absent modules must cost nothing.
// Targets: idle RSS <= bare + 12 MB, ready <= 300 ms.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { agentBundle } from './agent.ts';
import {
  ROOT,
  count,
  makePki,
  median,
  parseReady,
  round,
  rssBytes,
  sleep,
  spawnUntil,
  stopChild,
  tempDir,
  withoutServices,
  type Bench,
} from './lib.ts';

/** Node flags and Environment= of the shipped unit, so the bench measures what is deployed. */
export function unitRuntime(): { nodeFlags: string[]; env: Record<string, string> } {
  const unit = readFileSync(path.join(ROOT, 'deploy/systemd/ponio-agent.service'), 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1]?.trim().split(/\s+/) ?? [];
  const bundleAt = exec.findIndex((a) => a.endsWith('.cjs'));
  const nodeFlags = exec.slice(1, bundleAt < 0 ? 1 : bundleAt);
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(.*)$/gm))
    for (const kv of (m[1] ?? '').trim().split(/\s+/)) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
  return { nodeFlags, env };
}

export const bench: Bench = {
  name: 'agent-footprint',
  async run() {
    const runs = count(5, 2);
    const idleMs = count(2000, 1500);
    const bundle = await agentBundle();
    const pki = await makePki();
    const files = await pki.agent('footprint');
    const { nodeFlags, env } = unitRuntime();
    const childEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env };
    const agentReady: number[] = [];
    const agentRss: number[] = [];
    const bareReady: number[] = [];
    const bareRss: number[] = [];
    let modules: Array<{ name: string; available: boolean }> = [];
    try {
      for (let i = 0; i < runs; i++) {
        // bare node, same wrapper (namespace + exec) so both pay the same start-up overhead
        const bare = withoutServices(process.execPath, [
          '-e',
          'process.stdout.write("ready\\n"); setInterval(() => {}, 1e9);',
        ]);
        const b = await spawnUntil(bare.file, bare.args, (l) => l === 'ready', { env: childEnv });
        bareReady.push(Number(b.readyNs) / 1e6);
        await sleep(idleMs);
        bareRss.push(rssBytes(b.proc.pid!) ?? NaN);
        await stopChild(b.proc);

        const sandbox = tempDir('footprint');
        const agent = withoutServices(process.execPath, [
          ...nodeFlags,
          bundle,
          'serve',
          '--listen',
          '127.0.0.1:0',
          '--cert',
          files.certFile,
          '--key',
          files.keyFile,
          '--ca',
          pki.caFile,
          '--sandbox',
          sandbox,
        ]);
        try {
          const s = await spawnUntil(agent.file, agent.args, (l) => parseReady(l) !== null, {
            env: childEnv,
          });
          agentReady.push(Number(s.readyNs) / 1e6);
          modules = parseReady(s.line)!.modules;
          await sleep(idleMs);
          agentRss.push(rssBytes(s.proc.pid!) ?? NaN);
          await stopChild(s.proc);
        } finally {
          rmSync(sandbox, { recursive: true, force: true });
        }
      }
    } finally {
      pki.cleanup();
    }
    const mb = (b: number): number => round(b / 2 ** 20, 1);
    const rssDelta = mb(median(agentRss) - median(bareRss));
    const ready = round(median(agentReady), 0);
    return [
      {
        bench: 'agent-footprint',
        subject: 'bare node -e (reference)',
        runs,
        idle_rss_mb: mb(median(bareRss)),
        ready_ms: round(median(bareReady), 0),
      },
      {
        bench: 'agent-footprint',
        subject: 'bundled agent, no service installed',
        runs,
        node_flags: nodeFlags.join(' '),
        bundle_kb: Math.round(readFileSync(bundle).length / 1024),
        idle_rss_mb: mb(median(agentRss)),
        rss_over_bare_mb: rssDelta,
        ready_ms: ready,
        ready_over_bare_ms: round(ready - median(bareReady), 0),
        modules_available: modules
          .filter((m) => m.available)
          .map((m) => m.name)
          .join(','),
        target: 'RSS <= bare + 12 MB, ready <= 300 ms',
        meets_target: rssDelta <= 12 && ready <= 300,
      },
    ];
  },
};
