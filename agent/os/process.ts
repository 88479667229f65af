import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ServiceStatus } from '../../shared/protocol/hello.ts';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Process and port helpers shared by the modules' private services (sandbox Apache, proftpd,
 * MariaDB) and the panel's dev sandbox: find a free loopback port, tell whether a pid still runs,
 * stop a process with escalation (SIGTERM, then SIGKILL), wait until a service is ready.
 */

export { sleep };

/** A port the kernel picks as free on `host` right now (another process may still take it). */
export function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Binds `host:port` with a plain listener (no connection is accepted into anything) so no other
 * program takes it meanwhile; the returned function frees it. The agent holds its own port while
 * its modules start: a killed agent's port is free again, and a private service picking a free
 * port (proftpd, Apache, MariaDB) must not get the very port the agent is about to listen on.
 */
export function holdPort(host: string, port: number): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => c.destroy());
    s.once('error', reject);
    let freed: Promise<void> | null = null;
    s.listen({ host, port, exclusive: true }, () =>
      resolve(() => (freed ??= new Promise<void>((done) => s.close(() => done())))),
    );
  });
}

/** Whether `port` can be bound on `host` right now. */
export function canBind(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** Whether something accepts TCP connections on `host:port`. */
export function connects(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Whether a process runs (a zombie does not: PID 1 of a container may reap it seconds later). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The pid a pid file names (an integer > 1), or null; says nothing about whether it runs. */
export function pidFromText(text: string | null | undefined): number | null {
  const pid = Number(text?.trim());
  return Number.isInteger(pid) && pid > 1 ? pid : null;
}

/**
 * Stops `pid`: SIGTERM, then SIGKILL when it still runs after `graceMs`; resolves when it is gone
 * (or after a further 5 s if even SIGKILL did not end it, e.g. a process stuck in the kernel).
 */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitUntil(() => !isAlive(pid), graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitUntil(() => !isAlive(pid), 5_000);
}

/** Whether a child process has ended (exit or signal). */
export const hasExited = (proc: ChildProcess): boolean => proc.exitCode !== null || proc.signalCode !== null;

/** Stops a child the agent spawned: SIGTERM, then SIGKILL after `graceMs`; resolves when it exited. */
export async function stopChild(proc: ChildProcess, graceMs = 5_000): Promise<void> {
  if (hasExited(proc)) return;
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

/**
 * Polls `ready` (with a growing interval from 2 ms to `maxIntervalMs`) until it returns true or
 * `timeoutMs` passed; resolves with whether it became ready. Bounded in time.
 */
export async function waitUntil(
  ready: () => boolean | Promise<boolean>,
  timeoutMs: number,
  maxIntervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    if (await ready()) return true;
    if (Date.now() > deadline) return false;
    await sleep(delay);
    delay = Math.min(delay * 2, maxIntervalMs);
  }
}

/**
 * System mode: the state of a Debian service the agent does not own, from its pid file — `down`
 * (with the reason) when no live process is named there, else `running`. Never restarts it:
 * systemd (or the admin) owns it. Cheap enough for every hello.
 */
export function systemServiceState(service: string, pidFile: string): ServiceStatus {
  let text: string | null = null;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch {
    /* no pid file: not running */
  }
  const pid = pidFromText(text);
  if (pid !== null && isAlive(pid)) return { service, state: 'running', restarts: 0 };
  return {
    service,
    state: 'down',
    restarts: 0,
    detail: `${service} is not running (${pid === null ? `no pid in ${pidFile}` : `pid ${pid} from ${pidFile} is gone`}); PonIO does not restart system services — start it (systemctl start ${service}).`,
  };
}
