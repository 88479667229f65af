import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface AgentProcess {
  proc: ChildProcess;
  port: number;
  output: () => string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

/**
 * Starts `ponio-agent serve ARGS` as a real process and waits for its "agent ready" log line.
 * Rejects with the process output if it exits first or is not ready in time.
 */
export function spawnAgent(
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; command?: [string, ...string[]] } = {},
): Promise<AgentProcess> {
  const [cmd, ...pre] = opts.command ?? [process.execPath, path.join(ROOT, 'bin/ponio-agent.js')];
  const proc = spawn(cmd, [...pre, 'serve', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: stop()/kill() signal the whole group, so wrappers such as npx or
    // `ip netns exec` cannot leave the real agent running.
    detached: true,
  });
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      try {
        process.kill(-proc.pid, signal);
      } catch {
        proc.kill(signal);
      }
    }
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stopWith('SIGKILL');
      reject(new Error(`agent not ready within ${opts.timeoutMs ?? 30_000} ms:\n${out}`));
    }, opts.timeoutMs ?? 30_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"agent ready"')) continue;
        try {
          const port = (JSON.parse(line) as { port: number }).port;
          clearTimeout(timer);
          resolve({
            proc,
            port,
            output: () => out,
            stop: () => stopWith('SIGTERM'),
            kill: () => stopWith('SIGKILL'),
          });
          return;
        } catch {
          /* partial line */
        }
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code}:\n${out}`));
    });
  });
}
