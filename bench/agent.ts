// A real, bundled agent process in sandbox mode and the panel's connection manager talking to it
// over mutual TLS: the set-up shared by rpc-latency, rpc-throughput and vs-ssh. `reverse: true`
// makes the agent dial the panel's agent listener instead (reverse mode, the same link).
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { pino } from 'pino';
import { ConnectionManager } from '../server/hosts/connection-manager.ts';
import { startAgentListener, type AgentListener } from '../server/hosts/agent-listener.ts';
import {
  buildAgentBundle,
  makePki,
  parseReady,
  spawnUntil,
  stopChild,
  tempDir,
  withoutServices,
  type BenchPki,
} from './lib.ts';
import { unitRuntime } from './agent-footprint.bench.ts';

export interface BenchAgent {
  hostId: string;
  port: number;
  pid: number;
  sandbox: string;
  pki: BenchPki;
  agentFiles: { certFile: string; keyFile: string; certPem: string; keyPem: string };
  manager: ConnectionManager;
  modules: Array<{ name: string; available: boolean; reason?: string }>;
  stop(): Promise<void>;
}

let bundlePromise: Promise<string> | null = null;
/** The agent bundle, built once per bench run. */
export function agentBundle(): Promise<string> {
  bundlePromise ??= buildAgentBundle();
  return bundlePromise;
}

/** Removes the bundle built for this run (bench/run.ts calls it at the end). */
export async function removeAgentBundle(): Promise<void> {
  if (!bundlePromise) return;
  const bundle = await bundlePromise.catch(() => null);
  bundlePromise = null;
  if (bundle) rmSync(path.dirname(path.dirname(bundle)), { recursive: true, force: true });
}

/**
 * Starts the bundled agent (sandbox mode) with only the websites service visible when
 * `websites` is true (its private Apache), or with no service at all.
 */
export async function startBenchAgent(opts: { websites: boolean; reverse?: boolean }): Promise<BenchAgent> {
  const bundle = await agentBundle();
  const pki = await makePki();
  const hostId = 'bench1';
  const agentFiles = await pki.agent(hostId);
  const sandbox = tempDir('sandbox');
  const panelTls = { certPem: pki.panel.certPem, keyPem: pki.panel.keyPem, caPem: pki.ca.certPem };
  const manager = new ConnectionManager({
    tls: () => panelTls,
    logger: pino({ level: 'silent' }),
    backoff: { minMs: 100, maxMs: 500 },
  });
  let listener: AgentListener | null = null;
  if (opts.reverse) {
    manager.add({ id: hostId, mode: 'reverse' });
    listener = await startAgentListener({
      host: '127.0.0.1',
      port: 0,
      tls: () => panelTls,
      revoked: () => new Set(),
      manager,
      logger: pino({ level: 'silent' }),
    });
  }
  // Started as deploy/systemd/ponio-agent.service starts it (node flags, Environment=).
  const unit = unitRuntime();
  const cmd = withoutServices(
    process.execPath,
    [
      ...unit.nodeFlags,
      bundle,
      'serve',
      ...(listener ? ['--connect', `wss://127.0.0.1:${listener.port}`] : ['--listen', '127.0.0.1:0']),
      '--cert',
      agentFiles.certFile,
      '--key',
      agentFiles.keyFile,
      '--ca',
      pki.caFile,
      '--sandbox',
      sandbox,
    ],
    opts.websites ? ['apache2', 'apache2ctl'] : [],
  );
  let proc: ChildProcess | null = null;
  try {
    const started = await spawnUntil(cmd.file, cmd.args, (l) => l.includes('"agent ready"'), {
      timeoutMs: 60_000,
      env: { ...process.env, ...unit.env },
    });
    proc = started.proc;
    const ready = parseReady(started.line)!;
    if (!listener) manager.add({ id: hostId, address: '127.0.0.1', port: ready.port });
    await manager.waitForState(hostId, 'online', 15_000);
    const p = proc;
    return {
      hostId,
      port: ready.port ?? 0,
      pid: p.pid!,
      sandbox,
      pki,
      agentFiles,
      manager,
      modules: ready.modules,
      async stop() {
        await listener?.close();
        await manager.close();
        await stopChild(p, 10_000);
        rmSync(sandbox, { recursive: true, force: true });
        pki.cleanup();
      },
    };
  } catch (e) {
    if (proc) await stopChild(proc);
    await listener?.close();
    await manager.close();
    rmSync(sandbox, { recursive: true, force: true });
    pki.cleanup();
    throw e;
  }
}

/** Creates `n` websites (bench-N.example) through the panel's connection manager. */
export async function createSites(a: BenchAgent, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    const r = await a.manager.call(a.hostId, 'create website', { domain: `bench-${i}.example` });
    if (!r.ok) throw new Error(`create website bench-${i}.example: ${r.error.code}: ${r.error.message}`);
  }
}

/** The directory holding the sandbox's vhost files (what `ls` over SSH lists). */
export const sitesDir = (a: BenchAgent): string => path.join(a.sandbox, 'etc/apache2/sites-available');
