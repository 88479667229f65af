// Shared helpers for the benchmarks (bench/*.bench.ts). Nothing here times assertions: benches
// measure and print; docs/benchmarks.md explains how to read the figures.
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCa, issueCertificate, type CaMaterial, type IssuedCert } from '../shared/pki/index.ts';
import { ALLOWED_BINARIES, whichBinary } from '../agent/os/exec.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** BENCH_QUICK=1: small counts, to check that every bench still runs (numbers are not meaningful). */
export const QUICK = process.env.BENCH_QUICK === '1';

/** One line of results: `{ bench: NAME, …figures… }`. */
export type BenchResult = { bench: string } & Record<string, unknown>;

/** The contract of every bench/*.bench.ts file. */
export interface Bench {
  name: string;
  run(): Promise<BenchResult[]>;
}

/** Scales a count down in quick mode. */
export const count = (full: number, quick: number): number => (QUICK ? quick : full);

// --- statistics -------------------------------------------------------------------------------

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** p50/p90/p99/max of durations given in nanoseconds, reported in microseconds. */
export function latencyStats(ns: readonly bigint[] | readonly number[]): {
  calls: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  mean_us: number;
} {
  const us = [...ns].map((v) => Number(v) / 1000).sort((a, b) => a - b);
  const mean = us.reduce((a, b) => a + b, 0) / Math.max(1, us.length);
  return {
    calls: us.length,
    p50_us: round(percentile(us, 50)),
    p90_us: round(percentile(us, 90)),
    p99_us: round(percentile(us, 99)),
    max_us: round(us[us.length - 1] ?? NaN),
    mean_us: round(mean),
  };
}

export const round = (n: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

// --- processes ------------------------------------------------------------------------------

/** Resident set size of a process in bytes (from /proc), or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `ponio-bench-${prefix}-`));
}

/** Runs a program (no shell) and resolves with its output; rejects on a non-zero exit. */
export function run(
  file: string,
  args: readonly string[],
  opts: { timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${String(stderr)}`));
      else resolve(String(stdout));
    });
  });
}

/** Kills a child and waits for it to exit (SIGTERM, then SIGKILL after graceMs). */
export async function stopChild(proc: ChildProcess, graceMs = 3000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/**
 * Spawns a process and resolves once a stdout line matches `ready` (the line is returned).
 * Rejects with the output when the process exits first or the time runs out.
 */
export function spawnUntil(
  file: string,
  args: readonly string[],
  ready: (line: string) => boolean,
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ proc: ChildProcess; line: string; readyNs: bigint; output: () => string }> {
  const t0 = process.hrtime.bigint();
  const proc = spawn(file, args, {
    cwd: opts.cwd ?? os.tmpdir(),
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let buf = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${path.basename(file)} not ready within ${opts.timeoutMs ?? 30_000} ms:\n${out}`));
    }, opts.timeoutMs ?? 30_000);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${path.basename(file)} exited with ${code}:\n${out}`));
    };
    proc.once('exit', onExit);
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    proc.stdout.on('data', (c: Buffer) => {
      const s = c.toString();
      out += s;
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (ready(line)) {
          const readyNs = process.hrtime.bigint() - t0;
          clearTimeout(timer);
          proc.off('exit', onExit);
          // Keep draining the pipes so the child never blocks on a full pipe.
          proc.stdout.removeAllListeners('data');
          proc.stdout.resume();
          resolve({ proc, line, readyNs, output: () => out });
          return;
        }
      }
    });
  });
}

// --- build and PKI ------------------------------------------------------------------------

/** Builds the single-file agent bundle into a temp dir (esbuild, < 1 s) and returns its path. */
export async function buildAgentBundle(): Promise<string> {
  const out = tempDir('dist');
  await run(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--agent-only', '--out', out]);
  return path.join(out, 'agent', 'ponio-agent.cjs');
}

export interface BenchPki {
  dir: string;
  ca: CaMaterial;
  panel: IssuedCert;
  caFile: string;
  /** Issues an agent certificate for a host id and writes cert + key files. */
  agent(hostId: string): Promise<{ certFile: string; keyFile: string; certPem: string; keyPem: string }>;
  cleanup(): void;
}

export async function makePki(): Promise<BenchPki> {
  const dir = tempDir('pki');
  const ca = await createCa({ commonName: 'PonIO bench CA' });
  const panel = await issueCertificate({ ca, role: { kind: 'panel' } });
  const caFile = path.join(dir, 'ca.crt');
  writeFileSync(caFile, ca.certPem);
  mkdirSync(path.join(dir, 'agents'));
  return {
    dir,
    ca,
    panel,
    caFile,
    async agent(hostId) {
      const c = await issueCertificate({
        ca,
        role: { kind: 'host', hostId },
      });
      const certFile = path.join(dir, 'agents', `${hostId}.crt`);
      const keyFile = path.join(dir, 'agents', `${hostId}.key`);
      writeFileSync(certFile, c.certPem);
      writeFileSync(keyFile, c.keyPem, { mode: 0o600 });
      return { certFile, keyFile, certPem: c.certPem, keyPem: c.keyPem };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Parses the agent's "agent ready" pino line. */
export function parseReady(
  line: string,
): { port: number; modules: Array<{ name: string; available: boolean }> } | null {
  if (!line.includes('"agent ready"')) return null;
  try {
    return JSON.parse(line) as { port: number; modules: Array<{ name: string; available: boolean }> };
  } catch {
    return null;
  }
}

// --- CPU placement ------------------------------------------------------------------------------

/**
 * Puts the main thread of the bench process (the client) on CPU 0 and those of the given server
 * processes on CPU 1, with `taskset` (their GC and thread-pool helpers stay free to run anywhere). On a small VM the scheduler otherwise places each ping-pong pair on one
 * CPU (a cheap context switch) or on two (a cross-CPU wake-up, 2-3x slower) as it pleases, per
 * process and per run, so a reference and PonIO could be measured under different placements and
 * their ratio would mean nothing (measured here: TLS echo 46 vs 120 us, Socket.IO 121 vs 185 us).
 * Two CPUs is also what a real panel -> agent link looks like (two hosts). Returns how the run was
 * placed and a function that gives the bench process all CPUs back.
 */
export function pinClientAndServers(serverPids: readonly number[]): { placement: string; restore(): void } {
  const cpus = os.cpus().length;
  const taskset = (cpuList: string, pid: number): boolean => {
    try {
      execFileSync('taskset', ['-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (cpus < 2 || !taskset('0', process.pid))
    return { placement: 'unpinned (needs 2 CPUs and taskset)', restore: () => undefined };
  for (const pid of serverPids) taskset('1', pid);
  return {
    placement: 'client on CPU 0, servers on CPU 1',
    restore: () => void taskset(`0-${cpus - 1}`, process.pid),
  };
}

// --- "service absent" hosts -------------------------------------------------------------------

/** Allowed binaries that belong to the system module; every other one belongs to a service. */
const SYSTEM_BINARIES = new Set(['systemctl', 'df', 'ip', 'nsenter']);

/** The installed service programs (apache2, proftpd, mariadbd, iptables …) the agent may run. */
export function installedServiceBinaries(keep: readonly string[] = []): string[] {
  return ALLOWED_BINARIES.filter((b) => !SYSTEM_BINARIES.has(b) && !keep.includes(b))
    .map((b) => whichBinary(b))
    .filter((p): p is string => p !== null);
}

/**
 * Command line that runs PROGRAM ARGS in a private mount namespace where every service program
 * is hidden (bind-mounted over by /dev/null, so it is not executable): the agent sees a host
 * with none of its services installed (except the binaries named in `keep`). Needs root and
 * unshare (util-linux). The host itself is not changed; the namespace disappears with the process.
 */
export function withoutServices(
  program: string,
  args: readonly string[],
  keep: readonly string[] = [],
): { file: string; args: string[] } {
  const script =
    'while [ "$1" != -- ]; do mount --bind /dev/null "$1" || exit 1; shift; done; shift; exec "$@"';
  return {
    file: 'unshare',
    args: [
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      script,
      'sh',
      ...installedServiceBinaries(keep),
      '--',
      program,
      ...args,
    ],
  };
}
