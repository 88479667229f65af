import type { ChildProcess } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import type { Logger } from 'pino';
import { spawnService, type Exec } from '../../os/exec.ts';
import { atomicWrite, readIfExists } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';
import { canBind, connects, freeLoopbackPort, sleep, stopChild, stopPid } from '../../os/process.ts';
import { Supervisor } from '../../os/supervisor.ts';
import { available, unavailable } from '../types.ts';
import { firstAccount, systemGroups, type Account } from './accounts.ts';
import type { ProftpdAdapter } from './proftpd.ts';
import { endUserSessions, proftpdPidIn, runCheck } from './proftpd-process.ts';
import { sandboxConfig, sandboxPaths, sitesAvailableOf } from './proftpd-templates.ts';
import { proftpdMissing } from './probe.ts';
import type { FtpSettings } from './settings.ts';

const PASSIVE_COUNT = 16;

async function freePassiveRange(): Promise<[number, number]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 30_000 + Math.floor(Math.random() * 2_000) * PASSIVE_COUNT;
    let ok = true;
    for (let p = base; p < base + PASSIVE_COUNT && ok; p++) ok = await canBind(p);
    if (ok) return [base, base + PASSIVE_COUNT - 1];
  }
  throw new Error('no free passive port range on 127.0.0.1');
}

/** Sandbox mode: a private proftpd (`-n`, a child of the agent) on a loopback port. */
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
  // A proftpd that dies on its own is started again on the same ports (adapter.start below).
  const supervisor = new Supervisor({ service: 'proftpd', logger, restart: () => adapter.start() });

  const runtimeUser = async (): Promise<Account> =>
    (await firstAccount(['nobody'])) ?? { name: 'nobody', uid: 65534, gid: 65534 };

  const adapter: ProftpdAdapter = {
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
      const stale = await proftpdPidIn(paths.pidFile);
      if (stale !== null) await stopPid(stale, 5_000);

      const rt = await runtimeUser();
      const group = (await systemGroups()).get(rt.gid) ?? 'nogroup';
      if ((await readIfExists(paths.userFile)) === null)
        await atomicWrite(paths.userFile, '', { mode: 0o600, uid: rt.uid, gid: rt.gid });

      // A restart keeps the ports clients know.
      const port = settings.port ?? listening?.port ?? (await freeLoopbackPort());
      const passivePorts = settings.passivePorts ?? listening?.passivePorts ?? (await freePassiveRange());
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
      let up = false;
      proc.once('exit', (code, signal) => {
        exited = true;
        if (child !== proc) return; // stop() asked for it
        child = null;
        if (!up) return;
        logger.error({ stderr: stderr.slice(-1000) }, 'sandbox proftpd exited');
        supervisor.crashed(signal !== null ? `killed by ${signal}` : `exit status ${String(code)}`);
      });
      proc.once('error', () => (exited = true));
      for (let i = 0; i < 100 && !exited; i++) {
        if (await connects(port)) {
          listening = { host: '127.0.0.1', port, passivePorts };
          up = true;
          await atomicWrite(paths.infoFile, JSON.stringify({ ...listening, pid: proc.pid }) + '\n');
          logger.info({ port, passivePorts, pid: proc.pid }, 'sandbox proftpd started');
          return;
        }
        await sleep(50);
      }
      await stopChild(proc, 5_000);
      const why = stderr.trim().split('\n').slice(-3).join(' ');
      throw new Error(
        exited
          ? `proftpd exited at start: ${why || 'no output'}`
          : `proftpd did not listen on 127.0.0.1:${port} within 5 s`,
      );
    },
    async stop() {
      supervisor.stop();
      listening = null;
      await fsp.rm(paths.infoFile, { force: true });
      const proc = child;
      child = null;
      if (proc) await stopChild(proc, 5_000);
      const pid = await proftpdPidIn(paths.pidFile);
      if (pid !== null) await stopPid(pid, 5_000);
    },
    endSessions: (username) => endUserSessions(child?.pid ?? null, username),
    check: () => runCheck(paths.configFile),
    userFileOwner: runtimeUser,
    endpoint: () => listening,
    service: () => supervisor.status(),
  };
  return adapter;
}
