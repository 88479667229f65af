import type { ChildProcess } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { spawnService, type Exec } from '../../os/exec.ts';
import { atomicWrite, readIfExists } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';
import { available, unavailable, type ModuleAvailability } from '../types.ts';
import { firstAccount, systemAccounts, systemGroups, type Account } from './accounts.ts';
import { proftpdMissing } from './probe.ts';
import { fileReader, runtimeUserOf } from './proftpd-conf.ts';
import type { FtpSettings } from './settings.ts';

/**
 * The proftpd host adapter (design §6): where the user file and config live, how the config is
 * checked and how the daemon is reloaded. The module never hard-codes any of it.
 *
 * - system: Debian's proftpd; PonIO owns only /etc/proftpd/conf.d/ponio.conf and
 *   /etc/proftpd/ftpd.passwd, reloads through systemctl (or SIGHUP to the pid file without systemd).
 * - sandbox: a private proftpd with its own config, user file, pid/scoreboard files, logs, loopback
 *   port and passive port range, all under the sandbox directory; started and stopped by the module.
 */
export interface ProftpdAdapter {
  readonly mode: HostLayout['mode'];
  /** The AuthUserFile (passwd format). */
  readonly userFile: string;
  /** Website trees (`<wwwRoot>/<domain>/…`). */
  readonly wwwRoot: string;
  /** Apache's sites-available of this host: a tree under wwwRoot is a website's only with a vhost here. */
  readonly sitesAvailable: string;
  /** The configured FTP root for homes that are not in a website. */
  readonly ftpRoot: string;
  availability(): ModuleAvailability;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** `proftpd -t` on the configuration that is (or will be) live; throws failed-precondition with its output. */
  check(): Promise<void>;
  /** Owner and mode of the user file (0600, the daemon's runtime user). */
  userFileOwner(): Promise<Account>;
  /**
   * Ends the open sessions of `username` (after disable, delete or a password change), so the
   * change also applies to someone already logged in. Returns how many were ended.
   */
  endSessions(username: string): Promise<number>;
  /** Where the sandbox instance listens (null in system mode). */
  endpoint(): { host: string; port: number; passivePorts: [number, number] } | null;
}

const CHECK_TIMEOUT_MS = 15_000;

/**
 * Runs `proftpd -t -c FILE`. Through spawnService (stdin = /dev/null): with a socket on stdin
 * (which exec's execFile gives a child) proftpd assumes inetd mode and prints nothing on stderr,
 * and the admin would get no reason.
 */
async function runCheck(configFile: string): Promise<void> {
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

// --- system mode ------------------------------------------------------------------------------

/** Where Debian's proftpd keeps things (overridable for tests of the system adapter). */
export interface SystemPaths {
  /** The main config, which must `Include` the conf.d directory. */
  conf: string;
  confD: string;
  /** PonIO's snippet inside conf.d. */
  snippet: string;
  userFile: string;
  pidFile: string;
  /** Exists when systemd runs (then reloads go through systemctl). */
  systemdMarker: string;
}

export const SYSTEM_PATHS: SystemPaths = {
  conf: '/etc/proftpd/proftpd.conf',
  confD: '/etc/proftpd/conf.d',
  snippet: '/etc/proftpd/conf.d/ponio.conf',
  userFile: '/etc/proftpd/ftpd.passwd',
  pidFile: '/run/proftpd.pid',
  systemdMarker: '/run/systemd/system',
};

/** The conf.d snippet PonIO owns in system mode (pure, for tests and docs). */
export function systemSnippet(userFile: string): string {
  return [
    '# Managed by PonIO (ponio-agent): rewritten by the agent, do not edit by hand.',
    '# Virtual FTP users live in the AuthUserFile below (passwd format, SHA-512 crypt hashes);',
    '# each one is jailed in its home. System accounts still authenticate through mod_auth_unix.',
    '<IfModule mod_auth_file.c>',
    '  AuthOrder mod_auth_file.c mod_auth_unix.c',
    `  AuthUserFile ${userFile}`,
    '</IfModule>',
    'DefaultRoot ~',
    'RequireValidShell off',
    '',
  ].join('\n');
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Apache's sites-available of the host layout: `/etc/apache2/sites-available` in system mode,
 * `<sandbox>/etc/apache2/sites-available` in sandbox mode (where the websites module's Apache
 * adapter keeps vhosts; derived from the layout so the ftp module does not need that module).
 */
export const sitesAvailableOf = (layout: HostLayout): string =>
  path.join(layout.root, 'etc/apache2/sites-available');

/**
 * The account proftpd runs as: the `User` directive of the configuration in use (followed through
 * its Includes, see proftpd-conf.ts), resolved from /etc/passwd as data. When that fails — no
 * `User`, or a name the host does not have — the `proftpd` account, else root, with the reason.
 */
export async function proftpdRuntimeUser(
  conf: string,
  passwdFile = '/etc/passwd',
): Promise<{ account: Account; fallback: string | null }> {
  const name = await runtimeUserOf(conf, fileReader);
  const accounts = await systemAccounts(passwdFile);
  const found = name === null ? undefined : accounts.get(name);
  if (found) return { account: found, fallback: null };
  const account = accounts.get('proftpd') ?? { name: 'root', uid: 0, gid: 0 };
  const why =
    name === null
      ? `no User directive found in ${conf}`
      : `proftpd's User ${name} (${conf}) is not in ${passwdFile}`;
  return { account, fallback: `${why}; the FTP user file is owned by ${account.name} instead` };
}

export function createSystemAdapter(opts: {
  exec: Exec;
  logger: Logger;
  layout: HostLayout;
  settings: FtpSettings;
  paths?: SystemPaths;
}): ProftpdAdapter {
  const { exec, logger, layout, settings } = opts;
  const p = opts.paths ?? SYSTEM_PATHS;
  const userFile = p.userFile;
  let warned: string | null = null;
  const owner = async (): Promise<Account> => {
    const { account, fallback } = await proftpdRuntimeUser(p.conf);
    if (fallback !== null && fallback !== warned)
      logger.warn({ conf: p.conf, owner: account.name }, fallback);
    warned = fallback;
    return account;
  };

  const reload = async (): Promise<void> => {
    if (existsSync(p.systemdMarker)) {
      const r = await exec('systemctl', ['try-reload-or-restart', 'proftpd.service'], { timeoutMs: 30_000 });
      if (r.code !== 0)
        throw new RpcError('failed-precondition', `systemctl reload proftpd failed: ${r.stderr.trim()}`);
      return;
    }
    // No systemd (containers): the daemon's own way, SIGHUP to the pid in its pid file.
    const pid = Number((await readIfExists(p.pidFile))?.trim());
    if (!Number.isInteger(pid) || pid <= 1 || !(await isProftpd(pid))) {
      logger.info('proftpd is not running; nothing to reload');
      return;
    }
    process.kill(pid, 'SIGHUP');
  };

  return {
    mode: 'system',
    userFile,
    wwwRoot: layout.wwwRoot,
    sitesAvailable: sitesAvailableOf(layout),
    ftpRoot: settings.ftpRoot ?? '/srv/ftp',
    availability() {
      const missing = proftpdMissing();
      if (missing) return missing;
      if (!existsSync(p.conf)) return unavailable(`${p.conf} is missing (reinstall proftpd-core).`);
      return available();
    },
    async start() {
      const conf = (await readIfExists(p.conf)) ?? '';
      const include = new RegExp(`^\\s*Include\\s+"?${escapeRegExp(p.confD)}/?"?\\s*$`, 'm');
      if (!include.test(conf))
        throw new Error(`${p.conf} does not Include ${p.confD}/, so PonIO's snippet would be ignored`);
      const want = systemSnippet(userFile);
      const oldSnippet = await readIfExists(p.snippet);
      const oldUsers = await fsp.readFile(userFile).catch(() => null);
      const o = await owner();
      if (oldUsers !== null) {
        // Hashes are secrets: keep the file 0600 and owned by the daemon's user, whoever made it.
        await fsp.chmod(userFile, 0o600);
        await fsp.chown(userFile, o.uid, o.gid);
      }
      if (oldSnippet === want && oldUsers !== null) return;
      try {
        if (oldUsers === null) await atomicWrite(userFile, '', { mode: 0o600, uid: o.uid, gid: o.gid });
        await atomicWrite(p.snippet, want, { mode: 0o644 });
        await runCheck(p.conf);
        await reload();
      } catch (e) {
        if (oldSnippet === null) await fsp.rm(p.snippet, { force: true });
        else await atomicWrite(p.snippet, oldSnippet, { mode: 0o644 });
        if (oldUsers === null) await fsp.rm(userFile, { force: true });
        await reload().catch(() => undefined);
        throw e;
      }
      logger.info({ snippet: p.snippet, userFile }, 'proftpd configured for PonIO virtual users');
    },
    stop: () => Promise.resolve(),
    async endSessions(username) {
      const pid = Number((await readIfExists(p.pidFile))?.trim());
      return endUserSessions(
        Number.isInteger(pid) && pid > 1 && (await isProftpd(pid)) ? pid : null,
        username,
      );
    },
    check: () => runCheck(p.conf),
    userFileOwner: owner,
    endpoint: () => null,
  };
}

// --- sandbox mode -----------------------------------------------------------------------------

const PASSIVE_COUNT = 16;

export interface SandboxPaths {
  confDir: string;
  configFile: string;
  userFile: string;
  pidFile: string;
  scoreboard: string;
  infoFile: string;
  ftpRoot: string;
}

export function sandboxPaths(layout: HostLayout, settings: FtpSettings): SandboxPaths {
  const confDir = path.join(layout.root, 'etc/proftpd');
  return {
    confDir,
    configFile: path.join(confDir, 'proftpd.conf'),
    userFile: path.join(confDir, 'ftpd.passwd'),
    pidFile: path.join(layout.runDir, 'proftpd.pid'),
    scoreboard: path.join(layout.runDir, 'proftpd.scoreboard'),
    infoFile: path.join(layout.runDir, 'proftpd.json'),
    ftpRoot: settings.ftpRoot ?? path.join(layout.root, 'srv/ftp'),
  };
}

/** The private instance's full configuration (pure). Quoted values never come from requests. */
export function sandboxConfig(p: {
  paths: SandboxPaths;
  layout: HostLayout;
  port: number;
  passivePorts: [number, number];
  user: string;
  group: string;
}): string {
  const q = (s: string): string => `"${s}"`;
  return [
    '# PonIO sandbox proftpd: written by ponio-agent at start, private to this sandbox.',
    'ServerName "PonIO sandbox FTP"',
    'ServerType standalone',
    'ServerIdent on "PonIO sandbox FTP"',
    'DefaultServer on',
    `Port ${p.port}`,
    'DefaultAddress 127.0.0.1',
    'SocketBindTight on',
    'UseIPv6 off',
    'UseReverseDNS off',
    `User ${p.user}`,
    `Group ${p.group}`,
    `PidFile ${q(p.paths.pidFile)}`,
    `ScoreboardFile ${q(p.paths.scoreboard)}`,
    `SystemLog ${q(path.join(p.layout.logDir, 'proftpd.log'))}`,
    `TransferLog ${q(path.join(p.layout.logDir, 'proftpd-xfer.log'))}`,
    'WtmpLog off',
    'UseFtpUsers off',
    '<IfModule mod_delay.c>',
    '  DelayEngine off',
    '</IfModule>',
    '<IfModule mod_ctrls.c>',
    '  ControlsEngine off',
    '</IfModule>',
    'AuthOrder mod_auth_file.c',
    `AuthUserFile ${q(p.paths.userFile)}`,
    'RequireValidShell off',
    'DefaultRoot ~',
    `PassivePorts ${p.passivePorts[0]} ${p.passivePorts[1]}`,
    'MaxInstances 40',
    'MaxLoginAttempts 3',
    'TimeoutIdle 300',
    'Umask 022 022',
    'AllowOverwrite on',
    '',
  ].join('\n');
}

const canBind = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });

async function freePassiveRange(): Promise<[number, number]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 30_000 + Math.floor(Math.random() * 2_000) * PASSIVE_COUNT;
    let ok = true;
    for (let p = base; p < base + PASSIVE_COUNT && ok; p++) ok = await canBind(p);
    if (ok) return [base, base + PASSIVE_COUNT - 1];
  }
  throw new Error('no free passive port range on 127.0.0.1');
}

const connects = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

/**
 * Whether `pid` is a running proftpd. proftpd rewrites its argv ("proftpd: (accepting
 * connections)"), so the executable is checked; the pid comes from a pid file we own.
 */
async function isProftpd(pid: number): Promise<boolean> {
  try {
    const exe = await fsp.readlink(`/proc/${pid}/exe`);
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    return path.basename(exe) === 'proftpd' && !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
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

async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    await sleep(50);
    if (!existsSync(`/proc/${pid}`)) return;
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/^\d+ \(.*\) Z /.test(stat)) return; // zombie: gone for our purposes
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
}

export function createSandboxAdapter(opts: {
  exec: Exec;
  logger: Logger;
  layout: HostLayout;
  settings: FtpSettings;
}): ProftpdAdapter {
  const { logger, layout, settings } = opts;
  const paths = sandboxPaths(layout, settings);
  let listening: { host: string; port: number; passivePorts: [number, number] } | null = null;
  let child: ChildProcess | null = null;

  const runtimeUser = async (): Promise<Account> =>
    (await firstAccount(['nobody'])) ?? { name: 'nobody', uid: 65534, gid: 65534 };

  const readPid = async (): Promise<number | null> => {
    const pid = Number((await readIfExists(paths.pidFile))?.trim());
    return Number.isInteger(pid) && pid > 1 && (await isProftpd(pid)) ? pid : null;
  };

  return {
    mode: 'sandbox',
    userFile: paths.userFile,
    wwwRoot: layout.wwwRoot,
    sitesAvailable: sitesAvailableOf(layout),
    ftpRoot: paths.ftpRoot,
    availability() {
      const missing = proftpdMissing();
      if (missing) return missing;
      if (process.getuid?.() !== 0)
        return unavailable(
          'The sandbox FTP server needs root (proftpd switches to each FTP user’s uid); run the agent as root.',
        );
      return available();
    },
    async start() {
      // proftpd enters homes as the FTP user's uid: the sandbox root (often a 0700 mkdtemp dir)
      // must be traversable, never listable.
      const rootMode = (await fsp.stat(layout.root)).mode & 0o7777;
      if ((rootMode & 0o011) !== 0o011) await fsp.chmod(layout.root, rootMode | 0o011);
      for (const d of [paths.confDir, layout.runDir, layout.logDir, layout.wwwRoot])
        await fsp.mkdir(d, { recursive: true, mode: 0o755 });
      if (!existsSync(paths.ftpRoot)) {
        await fsp.mkdir(paths.ftpRoot, { recursive: true, mode: 0o755 });
        const o = (await firstAccount(['www-data', 'nobody'])) ?? { uid: 65534, gid: 65534 };
        await fsp.chown(paths.ftpRoot, o.uid, o.gid);
      }
      const stale = await readPid();
      if (stale !== null) await stopPid(stale);

      const rt = await runtimeUser();
      const group = (await systemGroups()).get(rt.gid) ?? 'nogroup';
      if ((await readIfExists(paths.userFile)) === null)
        await atomicWrite(paths.userFile, '', { mode: 0o600, uid: rt.uid, gid: rt.gid });

      const port = settings.port ?? (await freePort());
      const passivePorts = settings.passivePorts ?? (await freePassiveRange());
      await atomicWrite(
        paths.configFile,
        sandboxConfig({ paths, layout, port, passivePorts, user: rt.name, group }),
        { mode: 0o644 },
      );
      await runCheck(paths.configFile);
      // -n: no daemonising; the agent owns the process (like the sandbox Apache and MariaDB).
      const proc = spawnService('proftpd', ['-n', '-c', paths.configFile]);
      child = proc;
      let stderr = '';
      proc.stderr?.on('data', (c: Buffer) => {
        stderr = (stderr + c.toString()).slice(-8 * 1024);
      });
      let exited = false;
      proc.once('exit', () => {
        exited = true;
        if (child === proc) child = null;
        if (listening) logger.error({ stderr: stderr.slice(-1000) }, 'sandbox proftpd exited');
      });
      proc.once('error', () => (exited = true));
      for (let i = 0; i < 100 && !exited; i++) {
        if (await connects(port)) {
          listening = { host: '127.0.0.1', port, passivePorts };
          await atomicWrite(paths.infoFile, JSON.stringify({ ...listening, pid: proc.pid }) + '\n');
          logger.info({ port, passivePorts, pid: proc.pid }, 'sandbox proftpd started');
          return;
        }
        await sleep(50);
      }
      await stopChild(proc);
      const why = stderr.trim().split('\n').slice(-3).join(' ');
      throw new Error(
        exited
          ? `proftpd exited at start: ${why || 'no output'}`
          : `proftpd did not listen on 127.0.0.1:${port} within 5 s`,
      );
    },
    async stop() {
      listening = null;
      await fsp.rm(paths.infoFile, { force: true });
      if (child) await stopChild(child);
      child = null;
      const pid = await readPid();
      if (pid !== null) await stopPid(pid);
    },
    endSessions: (username) => endUserSessions(child?.pid ?? null, username),
    check: () => runCheck(paths.configFile),
    userFileOwner: runtimeUser,
    endpoint: () => listening,
  };
}
