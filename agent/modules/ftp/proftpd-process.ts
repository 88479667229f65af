import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { spawnService } from '../../os/exec.ts';
import { readIfExists } from '../../os/files.ts';
import { pidFromText } from '../../os/process.ts';

/** proftpd's processes: its config check, its master and session processes (both modes). */

const CHECK_TIMEOUT_MS = 15_000;

/**
 * Runs `proftpd -t -c FILE`. Through spawnService (stdin = /dev/null): with a socket on stdin
 * (which exec's execFile gives a child) proftpd assumes inetd mode and prints nothing on stderr,
 * and the admin would get no reason.
 */
export async function runCheck(configFile: string): Promise<void> {
  const child = spawnService('proftpd', ['-t', '-c', configFile]);
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (err.length < 64 * 1024) err += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), CHECK_TIMEOUT_MS);
    child.once('error', () => resolve(null));
    child.once('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  // proftpd 1.3.8 exits 0 when a file pulled in by `Include <dir>/` has a fatal error, so the
  // diagnostics count too.
  if (code !== 0 || /(^|\s)(fatal|error): /m.test(err)) {
    const out = err.trim().split('\n').slice(-8).join('\n') || `exit status ${String(code)}`;
    throw new RpcError('failed-precondition', `proftpd configuration test failed: ${out}`);
  }
}

/**
 * Whether `pid` is a running proftpd. proftpd rewrites its argv ("proftpd: (accepting
 * connections)"), so the executable is checked; the pid comes from a pid file we own.
 */
export async function isProftpd(pid: number): Promise<boolean> {
  try {
    const exe = await fsp.readlink(`/proc/${pid}/exe`);
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    return path.basename(exe) === 'proftpd' && !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** The running proftpd named by `pidFile`, or null. */
export async function proftpdPidIn(pidFile: string): Promise<number | null> {
  const pid = pidFromText(await readIfExists(pidFile));
  return pid !== null && (await isProftpd(pid)) ? pid : null;
}

/**
 * Ends the session processes of one user: children of the master `masterPid` whose process
 * title (set by proftpd after login) is `proftpd: <user> - <client>: …`. User names never
 * contain spaces, so `bob` never matches `bob.x`.
 */
export async function endUserSessions(masterPid: number | null, username: string): Promise<number> {
  if (masterPid === null) return 0;
  let ended = 0;
  for (const entry of await fsp.readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== masterPid) continue;
      const title = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0] ?? '';
      if (!title.startsWith(`proftpd: ${username} - `) || !(await isProftpd(pid))) continue;
      process.kill(pid, 'SIGTERM');
      ended++;
    } catch {
      /* the process went away meanwhile */
    }
  }
  return ended;
}
