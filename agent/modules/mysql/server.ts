import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type mysql from 'mysql2/promise';
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { atomicWrite, readIfExists, resolveUnder } from '../../os/files.ts';
import { spawnService, whichBinary, type Exec } from '../../os/exec.ts';
import type { HostLayout } from '../../os/layout.ts';
import {
  freeLoopbackPort,
  hasExited,
  isAlive,
  sleep,
  stopChild as stopProcess,
  stopPid,
} from '../../os/process.ts';
import { MARIADB_MISSING, mariadbMissing } from './probe.ts';
import { DatadirTemplate } from './template.ts';
import { Supervisor } from '../../os/supervisor.ts';
import type { ServiceStatus } from '../../../shared/protocol/hello.ts';
import { DEFAULT_SOCKET, readAdminPassword, type MysqlSettings } from './settings.ts';

/**
 * The MariaDB host adapter. The module only asks it for the admin pool and the admin account;
 * where the server lives (the host's own server, or a private sandbox instance) is decided here.
 */
export interface MysqlServer {
  readonly kind: 'system' | 'sandbox';
  /** The account the agent logs in as (never touched by the module). */
  readonly adminUser: string;
  /** Where clients reach the server: the local socket, and in sandbox mode the loopback port. */
  readonly socketPath: string;
  port(): number | undefined;
  /** The admin pool (created lazily in system mode; after start() in sandbox mode). */
  pool(): Promise<Pool>;
  /** Why the module cannot work on this host, or null. Cheap (no connection). */
  unavailableReason(): string | null;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The sandbox server's supervision state (undefined in system mode). */
  service(): ServiceStatus | undefined;
}

/**
 * The MariaDB driver (mysql2 and its dependencies, about 1 MB of the agent bundle), loaded on
 * first use: an agent on a host without MariaDB never evaluates it.
 */
let driver: Promise<typeof mysql> | null = null;
const loadDriver = (): Promise<typeof mysql> => (driver ??= import('mysql2/promise').then((m) => m.default));

const poolFor = async (socketPath: string, user: string, password: string | undefined): Promise<Pool> =>
  (await loadDriver()).createPool({
    socketPath,
    user,
    ...(password !== undefined ? { password } : {}),
    connectionLimit: 4,
    maxIdle: 2,
    idleTimeout: 30_000,
    connectTimeout: 5_000,
    charset: 'utf8mb4_unicode_ci',
    multipleStatements: false,
    decimalNumbers: true,
    supportBigNumbers: true,
    enableKeepAlive: true,
  });

/** System mode: the host's MariaDB/MySQL through its local socket, as the configured admin. */
export function systemServer(settings: MysqlSettings): MysqlServer {
  const socketPath = settings.socket ?? DEFAULT_SOCKET;
  const adminUser = settings.user ?? 'root';
  let pool: Promise<Pool> | null = null;
  let stopped = false;
  return {
    kind: 'system',
    adminUser,
    socketPath,
    port: () => undefined,
    pool() {
      if (stopped) return Promise.reject(new RpcError('unavailable', 'The agent is shutting down.'));
      if (!pool) {
        const p = Promise.resolve().then(() => poolFor(socketPath, adminUser, readAdminPassword(settings)));
        pool = p;
        // A failure (unreadable password file) is not kept: the next call tries again.
        p.catch(() => {
          if (pool === p) pool = null;
        });
      }
      return pool;
    },
    unavailableReason() {
      if (settings.socket !== undefined) return null;
      return mariadbMissing('system') ? MARIADB_MISSING : null;
    },
    start: () => Promise.resolve(),
    service: () => undefined,
    async stop() {
      stopped = true;
      const p = pool;
      pool = null;
      await (await p?.catch(() => null))?.end();
    },
  };
}

const tail = (text: string, lines = 12): string => text.trim().split('\n').slice(-lines).join('\n');

/**
 * Sandbox mode: a private MariaDB under the sandbox directory, with its own config, datadir,
 * socket, pid file and a loopback port. start() initialises the datadir on first use
 * (mariadb-install-db, root by unix_socket), starts mariadbd and waits until it accepts
 * connections; stop() shuts it down cleanly (SIGTERM = normal shutdown) and waits for it.
 */
export function sandboxServer(
  layout: HostLayout,
  settings: MysqlSettings,
  exec: Exec,
  logger: Logger,
): MysqlServer {
  const base = resolveUnder(layout.root, 'var/lib/mysql-sandbox');
  const datadir = path.join(base, 'data');
  const cnf = path.join(base, 'my.cnf');
  const socketPath = settings.socket ?? resolveUnder(layout.runDir, 'mysqld.sock');
  const pidFile = resolveUnder(layout.runDir, 'mysqld.pid');
  const errorLog = resolveUnder(layout.logDir, 'mariadb.log');
  const isRoot = process.getuid?.() === 0;
  // Run as root, mariadbd needs --user=root; otherwise it runs as the current user, and the
  // unix_socket admin account is that user.
  const adminUser = isRoot ? 'root' : os.userInfo().username;
  let child: ChildProcess | null = null;
  /** A server started by an earlier agent of this sandbox, adopted at start (not our child). */
  let adopted: number | null = null;
  let watcher: NodeJS.Timeout | null = null;
  let exited: Promise<void> = Promise.resolve();
  let pool: Pool | null = null;
  let port: number | undefined;
  // A mariadbd that dies on its own (a crash, an OOM kill) is started again on the same port.
  const supervisor = new Supervisor({
    service: 'mariadb',
    logger,
    restart: async () => {
      const old = pool;
      pool = null;
      await old?.end().catch(() => undefined);
      await launch();
      pool = await poolFor(socketPath, adminUser, undefined);
    },
  });

  const writeConfig = async (p: number): Promise<void> => {
    const lines = [
      '# Written by the PonIO agent for its sandbox MariaDB; rewritten at every start.',
      '[mysqld]',
      `datadir=${datadir}`,
      `socket=${socketPath}`,
      `pid-file=${pidFile}`,
      `port=${p}`,
      'bind-address=127.0.0.1',
      ...(isRoot ? ['user=root'] : []),
      'skip-name-resolve',
      'skip-log-bin',
      'performance-schema=OFF',
      'innodb-buffer-pool-size=16M',
      'innodb-log-file-size=8M',
      'max-connections=50',
      `log-error=${errorLog}`,
      '',
    ];
    for (const value of [datadir, socketPath, pidFile, errorLog])
      if (/[\n\r\0]/.test(value)) throw new Error('sandbox path contains a line break');
    await atomicWrite(cnf, lines.join('\n'), { mode: 0o600 });
  };

  const initialise = async (): Promise<void> => {
    if ((await readIfExists(path.join(datadir, 'mysql_upgrade_info'))) !== null) return;
    await fsp.rm(datadir, { recursive: true, force: true });
    const mariadbd = whichBinary('mariadbd');
    const template = mariadbd !== null ? new DatadirTemplate(mariadbd, logger) : null;
    if (template && (await template.copyTo(datadir))) {
      logger.debug('sandbox MariaDB datadir copied from the template');
      return;
    }
    await fsp.mkdir(datadir, { recursive: true, mode: 0o700 });
    const bin = whichBinary('mariadb-install-db') ? 'mariadb-install-db' : 'mysql_install_db';
    const r = await exec(
      bin,
      [
        `--defaults-file=${cnf}`,
        '--auth-root-authentication-method=socket',
        ...(isRoot ? [] : [`--auth-root-socket-user=${adminUser}`]),
        '--skip-test-db',
      ],
      { timeoutMs: 120_000 },
    );
    if (r.code !== 0) {
      await fsp.rm(datadir, { recursive: true, force: true });
      throw new Error(`${bin} failed: ${tail(r.stderr || r.stdout)}`);
    }
    await template?.saveFrom(datadir);
  };

  /**
   * The mariadbd processes of this sandbox's config, whatever their pid file says (it may be
   * gone, or name a recycled pid): found by their command line.
   */
  const ourServers = async (): Promise<number[]> => {
    const out: number[] = [];
    for (const name of await fsp.readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      const argv = ((await readIfExists(`/proc/${name}/cmdline`).catch(() => null)) ?? '').split('\0');
      if (argv.includes(`--defaults-file=${cnf}`) && path.basename(argv[0] ?? '').startsWith('mariadbd'))
        out.push(Number(name));
    }
    return out;
  };

  /**
   * A mariadbd a previous agent of this sandbox left running (it was killed, or stopped without
   * stopping its services): adopted when it is the only one, answers as admin within 10 s and
   * serves this datadir; otherwise every one of them is stopped (never two servers on one
   * datadir). Returns whether one was adopted.
   */
  const adoptLeftover = async (): Promise<boolean> => {
    const pids = await ourServers();
    if (pids.length === 1 && pids[0] !== undefined) {
      const pid = pids[0];
      const found = await serverInfo(10_000);
      if (found && path.resolve(found.datadir) === path.resolve(datadir) && isAlive(pid)) {
        port = found.port;
        await writeConfig(found.port);
        adopted = pid;
        watchAdopted();
        logger.info({ pid, port }, 'adopted the running sandbox MariaDB');
        return true;
      }
    }
    for (const pid of pids) {
      logger.warn({ pid }, 'stopping a sandbox MariaDB that cannot be adopted');
      try {
        process.kill(pid, 'SIGCONT'); // a stopped (hung) one gets the SIGTERM too
      } catch {
        /* gone */
      }
      await stopPid(pid, 30_000);
    }
    return false;
  };

  /** The running server's port and datadir (over the socket, as admin), or null. */
  const serverInfo = async (withinMs: number): Promise<{ port: number; datadir: string } | null> => {
    const deadline = Date.now() + withinMs;
    for (;;) {
      try {
        const c = await (
          await loadDriver()
        ).createConnection({ socketPath, user: adminUser, connectTimeout: 2000 });
        try {
          const [rows] = await c.query('SELECT @@port AS port, @@datadir AS datadir');
          const row = (rows as { port: number; datadir: string }[])[0];
          return row ? { port: Number(row.port), datadir: String(row.datadir) } : null;
        } finally {
          c.destroy();
        }
      } catch {
        /* not (yet) answering */
      }
      if (Date.now() > deadline) return null;
      await sleep(200);
    }
  };

  /** An adopted server is not our child: its death is seen by polling. */
  const watchAdopted = (): void => {
    if (watcher !== null) return;
    watcher = setInterval(() => {
      if (adopted === null || isAlive(adopted)) return;
      adopted = null;
      supervisor.crashed('mariadbd is no longer running');
    }, 1_000);
    watcher.unref();
  };

  const waitReady = async (proc: ChildProcess): Promise<void> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (hasExited(proc)) {
        const log = (await readIfExists(errorLog)) ?? '';
        throw new Error(`mariadbd exited during start-up: ${tail(log)}`);
      }
      try {
        const c = await (
          await loadDriver()
        ).createConnection({ socketPath, user: adminUser, connectTimeout: 2000 });
        await c.end();
        return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) {
        const log = (await readIfExists(errorLog)) ?? '';
        throw new Error(`mariadbd did not accept connections within 60 s: ${tail(log)}`);
      }
      await sleep(150);
    }
  };

  const launch = async (): Promise<void> => {
    // Detached, like the host's own MariaDB is to an agent: a killed agent leaves it serving,
    // and the next agent of this sandbox adopts it (adoptLeftover). It logs to its error log.
    const proc = spawnService('mariadbd', [`--defaults-file=${cnf}`], { detached: true });
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    proc.once('error', (e) => logger.error({ err: e.message }, 'sandbox mariadbd failed'));
    child = proc;
    try {
      await waitReady(proc);
    } catch (e) {
      await stopChild();
      throw e;
    }
    // From here on, an exit nobody asked for (stopChild clears `child` first) is a crash.
    proc.once('exit', (code, signal) => {
      if (child !== proc) return;
      child = null;
      supervisor.crashed(signal !== null ? `killed by ${signal}` : `exit status ${String(code)}`);
    });
  };

  const stopChild = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (!proc) return;
    // A clean InnoDB shutdown can take a while; SIGKILL only when it hangs.
    await stopProcess(proc, 60_000);
    await exited;
  };

  return {
    kind: 'sandbox',
    adminUser,
    socketPath,
    port: () => port,
    pool() {
      if (!pool || supervisor.down)
        return Promise.reject(
          new RpcError(
            'unavailable',
            `The sandbox MariaDB is not reachable: ${supervisor.status().detail ?? 'it is not running.'}`,
          ),
        );
      return Promise.resolve(pool);
    },
    service: () => supervisor.status(),
    unavailableReason() {
      if (mariadbMissing('sandbox')) return MARIADB_MISSING;
      if (!whichBinary('mariadb-install-db') && !whichBinary('mysql_install_db'))
        return 'mariadb-install-db is missing (apt-get install mariadb-server).';
      if (Buffer.byteLength(socketPath) > 100)
        return `The sandbox path is too long for a MariaDB socket (${socketPath}).`;
      return null;
    },
    async start() {
      await fsp.mkdir(base, { recursive: true, mode: 0o700 });
      await fsp.mkdir(layout.runDir, { recursive: true });
      await fsp.mkdir(layout.logDir, { recursive: true });
      if (await adoptLeftover()) {
        pool = await poolFor(socketPath, adminUser, undefined);
        return;
      }
      // A free port can be taken between the probe and mariadbd's bind: try a few times.
      for (let attempt = 1; ; attempt++) {
        port = settings.port ?? (await freeLoopbackPort());
        await writeConfig(port);
        await initialise();
        try {
          await launch();
          break;
        } catch (e) {
          if (attempt >= 3 || settings.port !== undefined || !/in use|bind/i.test((e as Error).message))
            throw e;
        }
      }
      pool = await poolFor(socketPath, adminUser, undefined);
      logger.info({ port, socket: socketPath }, 'sandbox MariaDB ready');
    },
    async stop() {
      supervisor.stop();
      if (watcher !== null) clearInterval(watcher);
      watcher = null;
      const p = pool;
      pool = null;
      await p?.end().catch(() => undefined);
      await stopChild();
      const other = adopted;
      adopted = null;
      if (other !== null) await stopPid(other, 60_000);
    },
  };
}
