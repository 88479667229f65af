import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PhpVersion } from '../../../shared/protocol/events/websites.ts';
import type { Exec } from '../../os/exec.ts';
import { atomicWrite, readIfExists } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';
import { isAlive, pidFromText, stopPid } from '../../os/process.ts';
import { Supervisor } from '../../os/supervisor.ts';
import type { CheckResult } from './apache.ts';
import { checkPath, outputOf } from './apache-config.ts';
import { logSince, logSize } from './apache-log.ts';
import type { PhpFpmHost } from './php-fpm.ts';
import { fpmBinary, fpmTest, installedVersions, signalReload } from './php-fpm-process.ts';

interface Master {
  version: PhpVersion;
  conf: string;
  poolDir: string;
  pidFile: string;
  log: string;
  supervisor: Supervisor;
  running: boolean;
}

/**
 * Sandbox mode: one private php-fpm master per installed version, all under the sandbox
 * directory (`<sb>/etc/php/<v>/fpm/`, sockets and pid in `<sb>/run/php/`, log in
 * `<sb>/log/php/`). Like the sandbox Apache it daemonises, is adopted by the next agent (pid file
 * + command line) and restarted by a supervisor when it dies. Needs root: each site's pool runs
 * as the site's own system user.
 */
export class SandboxPhpFpm implements PhpFpmHost {
  private readonly masters = new Map<PhpVersion, Master>();
  private readonly runDir: string;
  private readonly logDir: string;
  private watcher: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private busy = 0;

  constructor(
    private readonly layout: HostLayout,
    private readonly exec: Exec,
    private readonly logger: Logger,
  ) {
    this.runDir = checkPath(path.join(layout.runDir, 'php'), 'run');
    this.logDir = checkPath(path.join(layout.logDir, 'php'), 'log');
    for (const version of this.versions()) {
      const dir = checkPath(path.join(layout.root, 'etc/php', version, 'fpm'), 'sandbox');
      this.masters.set(version, {
        version,
        conf: path.join(dir, 'php-fpm.conf'),
        poolDir: path.join(dir, 'pool.d'),
        pidFile: path.join(this.runDir, `php${version}-fpm.pid`),
        log: path.join(this.logDir, `php${version}-fpm.log`),
        supervisor: new Supervisor({
          service: `php${version}-fpm`,
          logger,
          restart: () => this.revive(version),
        }),
        running: false,
      });
    }
  }

  versions(): PhpVersion[] {
    return process.getuid?.() === 0 ? installedVersions() : [];
  }

  unavailable(): string | undefined {
    if (process.getuid?.() !== 0)
      return 'PHP per site needs the agent to run as root (each site gets its own system user).';
    return installedVersions().length > 0
      ? undefined
      : 'php-fpm is not installed on this host (apt-get install php8.2-fpm).';
  }

  private master(v: PhpVersion): Master {
    const m = this.masters.get(v);
    if (!m) throw new Error(`PHP ${v} is not installed on this host`);
    return m;
  }

  poolDir(v: PhpVersion): string {
    return this.master(v).poolDir;
  }

  socketPath(_v: PhpVersion, pool: string): string {
    return path.join(this.runDir, `${pool}.sock`);
  }

  writesIn(): string[] {
    return [...this.masters.values()].map((m) => m.poolDir);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.busy++;
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined).finally(() => this.busy--);
    return run;
  }

  private mainConf(m: Master): string {
    return [
      '; Private php-fpm of the PonIO sandbox; written by the agent at every start.',
      '[global]',
      `pid = ${m.pidFile}`,
      `error_log = ${m.log}`,
      'log_level = notice',
      'daemonize = yes',
      `include = ${m.poolDir}/*.conf`,
      // A master needs one pool to start: an idle one nobody is sent to.
      '[ponio-idle]',
      'user = nobody',
      'group = nogroup',
      `listen = ${path.join(this.runDir, `php${m.version}-idle.sock`)}`,
      'pm = ondemand',
      'pm.max_children = 1',
      '',
    ].join('\n');
  }

  private async runningPid(m: Master): Promise<number | null> {
    const pid = pidFromText(await readIfExists(m.pidFile));
    if (pid === null || !isAlive(pid)) return null;
    const cmdline = await readIfExists(`/proc/${pid}/cmdline`);
    // The master renames itself "php-fpm: master process (<conf>)".
    return cmdline?.includes(`(${m.conf})`) === true ? pid : null;
  }

  async start(): Promise<void> {
    if (this.masters.size === 0) return;
    await fsp.mkdir(this.runDir, { recursive: true, mode: 0o755 });
    await fsp.chmod(this.runDir, 0o755);
    await fsp.mkdir(this.logDir, { recursive: true });
    // Apache's workers (www-data) reach the sockets: "others" need the search bit down to run/php.
    for (const d of [this.layout.root, this.layout.runDir]) {
      const st = await fsp.stat(d);
      if ((st.mode & 0o001) === 0) await fsp.chmod(d, (st.mode & 0o7777) | 0o001);
    }
    for (const m of this.masters.values()) {
      await fsp.mkdir(m.poolDir, { recursive: true });
      await atomicWrite(m.conf, this.mainConf(m));
      const adopted = await this.runningPid(m);
      if (adopted !== null) {
        const r = await this.reload(m.version);
        if (!r.ok) throw new Error(`php${m.version}-fpm did not reload: ${r.output}`);
        this.logger.info({ pid: adopted, version: m.version }, 'adopted the running sandbox php-fpm');
      } else {
        const r = await this.launch(m);
        if (!r.ok) throw new Error(`the sandbox php${m.version}-fpm did not start: ${r.output}`);
        this.logger.info({ version: m.version }, 'sandbox php-fpm started');
      }
      m.running = true;
    }
    this.watch();
  }

  private async launch(m: Master): Promise<CheckResult> {
    await fsp.rm(m.pidFile, { force: true });
    const offset = await logSize(m.log);
    // Daemonises once its pools listen (the parent waits for the master's "ready").
    const r = await this.exec(fpmBinary(m.version), ['--fpm-config', m.conf], { timeoutMs: 30_000 });
    if (r.code !== 0)
      return {
        ok: false,
        output: [outputOf(r), (await logSince(m.log, offset)).trim()].filter(Boolean).join('\n'),
      };
    return { ok: true, output: '' };
  }

  private watch(): void {
    if (this.watcher !== null) return;
    this.watcher = setInterval(() => {
      if (this.busy > 0) return;
      for (const m of this.masters.values()) {
        if (!m.running || m.supervisor.down) continue;
        void this.runningPid(m).then((pid) => {
          if (pid === null && this.busy === 0 && m.running)
            m.supervisor.crashed(`php${m.version}-fpm is no longer running`);
        });
      }
    }, 1_000);
    this.watcher.unref();
  }

  private revive(v: PhpVersion): Promise<void> {
    return this.exclusive(async () => {
      const m = this.master(v);
      if ((await this.runningPid(m)) !== null) return;
      const r = await this.launch(m);
      if (!r.ok) throw new Error(r.output);
    });
  }

  configTest(v: PhpVersion): Promise<CheckResult> {
    return fpmTest(this.exec, v, this.master(v).conf);
  }

  reload(v: PhpVersion): Promise<CheckResult> {
    return this.exclusive(async () => {
      const m = this.master(v);
      const pid = await this.runningPid(m);
      const r = pid === null ? await this.launch(m) : await signalReload(pid, m.log, await logSize(m.log));
      if (r.ok) m.supervisor.recovered();
      return r;
    });
  }

  async stop(): Promise<void> {
    if (this.watcher !== null) clearInterval(this.watcher);
    this.watcher = null;
    for (const m of this.masters.values()) {
      m.supervisor.stop();
      m.running = false;
      const pid = await this.runningPid(m);
      if (pid !== null) await stopPid(pid, 10_000);
    }
  }
}
