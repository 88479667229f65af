import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './agent-process.ts';

/** Runs a program inside a network namespace; returns stdout (throws with stderr on failure). */
export function nsRun(ns: string, cmd: string, args: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(input !== undefined ? { input } : {}),
  });
}

export interface NetnsPair {
  panelNs: string;
  hostNs: string;
  /** The panel namespace's main address, a second one (another "client"), and IPv6 twins. */
  panelIp: string;
  panelIp2: string;
  hostIp: string;
  panelIp6: string;
  hostIp6: string;
  destroy(): void;
}

/**
 * Two fresh network namespaces joined by a veth pair: one plays the panel, one the host. Unique
 * names; `destroy()` deletes both (and with them the veth pair and every rule inside).
 */
export function createNetnsPair(tag: string): NetnsPair {
  const id = randomBytes(3).toString('hex');
  const panelNs = `ponio-${tag}-${id}-p`;
  const hostNs = `ponio-${tag}-${id}-h`;
  const octet = 16 + (parseInt(id.slice(0, 2), 16) % 200);
  // Written in canonical (RFC 5952) form, as iptables prints it and the agent returns it: the
  // second group is always 1000–ffff (no leading zero, never 0, which would compress to `::`).
  const prefix6 = `fd00:${(0x1000 + (parseInt(id.slice(0, 4), 16) % 0xf000)).toString(16)}`;
  const pair: NetnsPair = {
    panelNs,
    hostNs,
    panelIp: `10.${octet}.0.1`,
    panelIp2: `10.${octet}.0.3`,
    hostIp: `10.${octet}.0.2`,
    panelIp6: `${prefix6}::1`,
    hostIp6: `${prefix6}::2`,
    destroy() {
      for (const ns of [panelNs, hostNs]) {
        try {
          execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
        } catch {
          /* already gone */
        }
      }
    },
  };
  const ip = (...args: string[]): void => {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  try {
    ip('netns', 'add', panelNs);
    ip('netns', 'add', hostNs);
    const vp = `vp${id}`;
    const vh = `vh${id}`;
    ip('link', 'add', vp, 'netns', panelNs, 'type', 'veth', 'peer', 'name', vh, 'netns', hostNs);
    for (const [ns, dev, v4, v6] of [
      [panelNs, vp, pair.panelIp, pair.panelIp6],
      [hostNs, vh, pair.hostIp, pair.hostIp6],
    ] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev);
      ip('-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad');
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    ip('-n', panelNs, 'addr', 'add', `${pair.panelIp2}/24`, 'dev', vp);
  } catch (e) {
    pair.destroy();
    throw e;
  }
  return pair;
}

/** A test helper process inside a namespace (test/helpers/ns-helper.ts), driven over stdin/stdout. */
export interface NsHelper {
  request<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

export async function startNsHelper(ns: string): Promise<NsHelper> {
  const proc: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--import', 'tsx', path.join(ROOT, 'test/helpers/ns-helper.ts')],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const rl = createInterface({ input: proc.stdout! });
  rl.on('line', (line) => {
    const m = JSON.parse(line) as { id?: number; ready?: boolean; result?: unknown; error?: string };
    if (m.ready) return ready();
    const w = m.id === undefined ? undefined : waiting.get(m.id);
    if (!w || m.id === undefined) return;
    waiting.delete(m.id);
    if (m.error !== undefined) w.reject(new Error(m.error));
    else w.resolve(m.result);
  });
  void exited.then(() => {
    for (const w of waiting.values()) w.reject(new Error(`ns helper exited: ${stderr}`));
    waiting.clear();
  });
  await Promise.race([
    readyP,
    exited.then(() => {
      throw new Error(`ns helper in ${ns} exited early: ${stderr}`);
    }),
  ]);
  let next = 1;
  return {
    request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.stdin?.write(JSON.stringify({ id, op, ...args }) + '\n');
      });
    },
    async close() {
      proc.stdin?.end();
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

export interface NsAgent {
  port: number;
  output: () => string;
  stop(): Promise<void>;
  /** SIGKILL and wait for exit (a crash: no cleanup runs). */
  kill(): Promise<void>;
}

/** Starts `ponio-agent serve ARGS` inside a namespace and waits for its "agent ready" line. */
export function spawnAgentInNs(ns: string, args: string[], timeoutMs = 30_000): Promise<NsAgent> {
  const proc = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, path.join(ROOT, 'bin/ponio-agent.js'), 'serve', ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`agent not ready within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code}:\n${out}`));
    };
    proc.once('exit', onExit);
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"agent ready"')) continue;
        try {
          const port = (JSON.parse(line) as { port: number }).port;
          clearTimeout(timer);
          proc.off('exit', onExit);
          resolve({
            port,
            output: () => out,
            async stop() {
              if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
              const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
              await exited;
              clearTimeout(t);
            },
            async kill() {
              if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
              await exited;
            },
          });
          return;
        } catch {
          /* partial line */
        }
      }
    });
  });
}
