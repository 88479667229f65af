import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * The only way agent code runs a program: execFile with an argument array (never a shell) and a
 * fixed allow-list of binaries, resolved to absolute paths from the standard system directories.
 * Add a binary here only with a reason; modules refer to binaries by these names.
 */
export const ALLOWED_BINARIES = [
  // system
  'systemctl',
  'df',
  'ip',
  'nsenter',
  // websites
  'apache2',
  'apache2ctl',
  // websites: PHP per site (one php-fpm per version: Debian names them php-fpm<version>) and the
  // site's own system user
  'php-fpm7.4',
  'php-fpm8.0',
  'php-fpm8.1',
  'php-fpm8.2',
  'php-fpm8.3',
  'php-fpm8.4',
  'useradd',
  'userdel',
  // ftp
  'proftpd',
  'ftpasswd',
  'openssl',
  // mysql
  'mariadbd',
  'mysqld',
  'mariadb-install-db',
  'mysql_install_db',
  'mariadb-admin',
  'mysqladmin',
  // firewall
  'iptables',
  'ip6tables',
  'iptables-restore',
  'ip6tables-restore',
  'iptables-save',
  'ip6tables-save',
  // backups
  'restic',
  'mariadb-dump', // a database's consistent dump, streamed into restic backup --stdin
  'mysqldump',
  'mariadb', // a dump streamed back from restic dump into a staging database
  'mysql',
] as const;
export type Binary = (typeof ALLOWED_BINARIES)[number];

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Finds an allowed binary; null when it is not installed. */
export function whichBinary(name: Binary): string | null {
  if (!(ALLOWED_BINARIES as readonly string[]).includes(name)) return null;
  for (const dir of SEARCH_PATH) {
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Written to the program's standard input (then closed). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run inside this network namespace (through `ip netns exec`). */
  netns?: string;
  maxBuffer?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class ExecError extends Error {
  constructor(
    message: string,
    readonly result: ExecResult | null,
  ) {
    super(message);
    this.name = 'ExecError';
  }
}

export type Exec = (bin: Binary, args: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

const ARG_MAX = 64 * 1024;

/**
 * Runs an allowed binary. Resolves with the exit code and output (a non-zero exit is not an
 * exception: callers decide); rejects with ExecError when the program is missing, cannot start,
 * or times out. Arguments containing NUL are refused.
 */
export const exec: Exec = (bin, args, opts = {}) => {
  const file = whichBinary(bin);
  if (!file) return Promise.reject(new ExecError(`${bin} is not installed`, null));
  for (const a of args) {
    if (typeof a !== 'string' || a.includes('\0') || a.length > ARG_MAX)
      return Promise.reject(new ExecError(`refused an invalid argument for ${bin}`, null));
  }
  let program = file;
  let argv = [...args];
  if (opts.netns !== undefined) {
    const ipBin = whichBinary('ip');
    if (!ipBin) return Promise.reject(new ExecError('ip (iproute2) is not installed', null));
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(opts.netns))
      return Promise.reject(new ExecError('refused an invalid network namespace name', null));
    program = ipBin;
    argv = ['netns', 'exec', opts.netns, file, ...args];
  }
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      argv,
      {
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: opts.maxBuffer ?? 16 * 1024 * 1024,
        env: opts.env ?? { PATH: SEARCH_PATH.join(':'), LANG: 'C', LC_ALL: 'C' },
        cwd: opts.cwd,
        shell: false,
        windowsHide: true,
      },
      (err, stdout, stderr) => {
        const out = String(stdout);
        const errOut = String(stderr);
        if (err && typeof err.code === 'number') {
          resolve({ code: err.code, stdout: out, stderr: errOut });
          return;
        }
        if (err && err.killed) {
          reject(new ExecError(`${bin} timed out`, { code: -1, stdout: out, stderr: errOut }));
          return;
        }
        if (err) {
          reject(
            new ExecError(`${bin} could not run: ${err.message}`, { code: -1, stdout: out, stderr: errOut }),
          );
          return;
        }
        resolve({ code: 0, stdout: out, stderr: errOut });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
};

/**
 * Starts a long-running allowed program that cannot daemonise itself (the sandbox's private
 * mariadbd): argument array, no shell, same allow-list and NUL check as exec. Standard output is
 * discarded; standard error is a pipe the caller may read (for start-up failures). The caller owns
 * the process and must stop it. `detached`: in a session of its own with no pipe to the agent (a
 * service that outlives a killed agent, to be adopted by the next one; its log is its own file).
 */
export function spawnService(
  bin: Binary,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean } = {},
): ChildProcess {
  const file = whichBinary(bin);
  if (!file) throw new ExecError(`${bin} is not installed`, null);
  for (const a of args) {
    if (typeof a !== 'string' || a.includes('\0') || a.length > ARG_MAX)
      throw new ExecError(`refused an invalid argument for ${bin}`, null);
  }
  return spawn(file, [...args], {
    env: opts.env ?? { PATH: SEARCH_PATH.join(':'), LANG: 'C', LC_ALL: 'C' },
    cwd: opts.cwd,
    shell: false,
    windowsHide: true,
    detached: opts.detached === true,
    stdio: opts.detached === true ? 'ignore' : ['ignore', 'ignore', 'pipe'],
  });
}

export interface PipeSide {
  bin: Binary;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface PipeResult {
  producer: ExecResult;
  consumer: ExecResult;
}

const checkArgs = (bin: Binary, args: readonly string[]): string | null => {
  const file = whichBinary(bin);
  if (!file) return `${bin} is not installed`;
  for (const a of args)
    if (typeof a !== 'string' || a.includes('\0') || a.length > ARG_MAX)
      return `refused an invalid argument for ${bin}`;
  return null;
};

/**
 * `producer | consumer` without a shell: two allowed programs, the first one's standard output
 * streamed into the second one's standard input (a database dump into `restic backup --stdin`,
 * `restic dump` into the client). Resolves with both exit codes and their standard error (and
 * the consumer's standard output); a non-zero exit is not an exception. Both are killed when
 * `timeoutMs` passes or `signal` aborts (ExecError).
 */
export function execPipe(
  producer: PipeSide,
  consumer: PipeSide,
  opts: { timeoutMs?: number; signal?: AbortSignal; maxBuffer?: number } = {},
): Promise<PipeResult> {
  for (const side of [producer, consumer]) {
    const why = checkArgs(side.bin, side.args);
    if (why) return Promise.reject(new ExecError(why, null));
  }
  const env = (side: PipeSide): NodeJS.ProcessEnv =>
    side.env ?? { PATH: SEARCH_PATH.join(':'), LANG: 'C', LC_ALL: 'C' };
  const max = opts.maxBuffer ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const p = spawn(whichBinary(producer.bin) as string, [...producer.args], {
      env: env(producer),
      cwd: producer.cwd,
      shell: false,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const c = spawn(whichBinary(consumer.bin) as string, [...consumer.args], {
      env: env(consumer),
      cwd: consumer.cwd,
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out = { p: '', pe: '', c: '', ce: '' };
    const add = (k: keyof typeof out) => (d: Buffer) => {
      if (out[k].length < max) out[k] += d.toString();
    };
    p.stderr.on('data', add('pe'));
    c.stdout.on('data', add('c'));
    c.stderr.on('data', add('ce'));
    p.stdout.pipe(c.stdin);
    // The consumer failing first (EPIPE) shows in its exit code; the error event must not throw.
    c.stdin.on('error', () => undefined);
    p.stdout.on('error', () => undefined);
    let codes: { p: number | null; c: number | null } = { p: null, c: null };
    let failed: Error | null = null;
    let left = 2;
    const kill = (why: string): void => {
      failed ??= new ExecError(why, null);
      p.kill('SIGKILL');
      c.kill('SIGKILL');
    };
    const timer = setTimeout(
      () => kill(`${producer.bin} | ${consumer.bin} timed out`),
      opts.timeoutMs ?? 600_000,
    );
    const onAbort = (): void => kill(`${producer.bin} | ${consumer.bin} was stopped`);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      left -= 1;
      if (left > 0) return;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (failed) {
        reject(failed);
        return;
      }
      resolve({
        producer: { code: codes.p ?? -1, stdout: '', stderr: out.pe },
        consumer: { code: codes.c ?? -1, stdout: out.c, stderr: out.ce },
      });
    };
    p.on('error', (e) => kill(`${producer.bin} could not run: ${e.message}`));
    c.on('error', (e) => kill(`${consumer.bin} could not run: ${e.message}`));
    p.on('close', (code) => {
      codes = { ...codes, p: code };
      if (code !== 0) c.stdin.end();
      done();
    });
    c.on('close', (code) => {
      codes = { ...codes, c: code };
      // A consumer that gave up leaves the producer writing into a closed pipe: stop it.
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      done();
    });
  });
}
