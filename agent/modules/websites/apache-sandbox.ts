import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Exec } from '../../os/exec.ts';
import { atomicWrite, readIfExists } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';
import { freeLoopbackPort, isAlive, pidFromText, stopPid } from '../../os/process.ts';
import { Supervisor } from '../../os/supervisor.ts';
import type { ServiceStatus } from '../../../shared/protocol/hello.ts';
import { available, unavailable, type ModuleAvailability } from '../types.ts';
import type { ApacheHost, CheckResult } from './apache.ts';
import {
  checkerResult,
  checkPath,
  MODULE_DIR,
  outputOf,
  SANDBOX_MODULES,
  sandboxMainConf,
} from './apache-config.ts';
import { explained, logSince, logSize, waitForReady } from './apache-log.ts';
import { apacheMissing } from './probe.ts';

/** The sandbox's state file (<runDir>/apache.json): where the private Apache listens. */
export interface SandboxApacheInfo {
  port: number;
  /** Its HTTPS port (sites with HTTPS; absent in the file of an agent from before HTTPS). */
  httpsPort?: number;
  url: string;
  pid: number;
}

/** Sandbox mode: a private Apache on a loopback port, all its files under the sandbox directory. */
export class SandboxApache implements ApacheHost {
  readonly mode = 'sandbox' as const;
  readonly confDir: string;
  readonly mainConf: string;
  readonly sitesAvailable: string;
  readonly sitesEnabled: string;
  readonly wwwRoot: string;
  readonly vhostListen = '*:${PONIO_HTTP_PORT}';
  private readonly runDir: string;
  private readonly pidFile: string;
  private readonly logDir: string;
  private readonly errorLog: string;
  private readonly infoFile: string;
  private port: number | null = null;
  private httpsPort = 0;
  readonly httpsListen = '*:${PONIO_HTTPS_PORT}';
  readonly httpsPortSuffix = ':${PONIO_HTTPS_PORT}';
  private readonly defaultCert: string;
  private readonly defaultKey: string;
  /** Apache daemonises: a watcher polls its pid and the supervisor starts it again when it died. */
  private readonly supervisor: Supervisor;
  private watcher: NodeJS.Timeout | null = null;
  /** Reloads, starts and restarts run one at a time (the watcher never races a reload). */
  private queue: Promise<unknown> = Promise.resolve();
  private busy = 0;

  constructor(
    private readonly layout: HostLayout,
    private readonly exec: Exec,
    private readonly logger: Logger,
    private readonly fixedPorts?: { http: number; https: number },
  ) {
    this.confDir = checkPath(path.join(layout.root, 'etc/apache2'), 'sandbox');
    this.mainConf = path.join(this.confDir, 'apache2.conf');
    this.sitesAvailable = path.join(this.confDir, 'sites-available');
    this.sitesEnabled = path.join(this.confDir, 'sites-enabled');
    this.wwwRoot = checkPath(layout.wwwRoot, 'web root');
    this.runDir = checkPath(path.join(layout.runDir, 'apache2'), 'run');
    this.pidFile = path.join(this.runDir, 'apache2.pid');
    this.logDir = checkPath(path.join(layout.logDir, 'apache2'), 'log');
    this.errorLog = path.join(this.logDir, 'error.log');
    this.infoFile = path.join(layout.runDir, 'apache.json');
    this.defaultCert = path.join(this.confDir, 'ssl/default.crt');
    this.defaultKey = path.join(this.confDir, 'ssl/default.key');
    this.supervisor = new Supervisor({ service: 'apache2', logger, restart: () => this.revive() });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.busy++;
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined).finally(() => this.busy--);
    return run;
  }

  service(): ServiceStatus {
    return this.supervisor.status();
  }

  private watch(): void {
    if (this.watcher !== null) return;
    this.watcher = setInterval(() => {
      if (this.busy > 0 || this.port === null || this.supervisor.down) return;
      void this.runningPid().then((pid) => {
        if (pid === null && this.busy === 0 && this.port !== null)
          this.supervisor.crashed('apache2 is no longer running');
      });
    }, 1_000);
    this.watcher.unref();
  }

  /** Starts the private Apache again on its port (the supervisor's restart). */
  private revive(): Promise<void> {
    return this.exclusive(async () => {
      if ((await this.runningPid()) !== null || this.port === null) return;
      await atomicWrite(this.mainConf, this.mainConfText(this.port));
      const r = await this.launch();
      if (!r.ok) throw new Error(r.output);
    });
  }

  availability(): ModuleAvailability {
    const missing = apacheMissing('sandbox');
    if (missing) return missing;
    for (const m of SANDBOX_MODULES) {
      if (!existsSync(path.join(MODULE_DIR, `mod_${m}.so`)))
        return unavailable(`The Apache module mod_${m} is missing (${MODULE_DIR}).`);
    }
    return available();
  }

  moduleEnabled(name: string): boolean {
    return (SANDBOX_MODULES as readonly string[]).includes(name);
  }

  url(): string | undefined {
    return this.port === null ? undefined : `http://127.0.0.1:${this.port}/`;
  }

  httpsUrl(): string | undefined {
    return this.port === null ? undefined : `https://127.0.0.1:${this.httpsPort}/`;
  }

  /** The default HTTPS vhost's certificate: self-signed, for a name no site has (made once). */
  private async ensureDefaultCert(): Promise<void> {
    if (existsSync(this.defaultCert) && existsSync(this.defaultKey)) return;
    await fsp.mkdir(path.dirname(this.defaultCert), { recursive: true, mode: 0o700 });
    const r = await this.exec(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
        ...['-days', '3650', '-subj', '/CN=default.invalid'],
        ...['-keyout', this.defaultKey, '-out', this.defaultCert],
      ],
      { timeoutMs: 30_000 },
    );
    if (r.code !== 0) throw new Error(`openssl could not make the default HTTPS certificate: ${outputOf(r)}`);
    await fsp.chmod(this.defaultKey, 0o600);
  }

  async prepare(): Promise<void> {
    for (const d of [this.sitesAvailable, this.sitesEnabled, this.wwwRoot, this.runDir, this.logDir])
      await fsp.mkdir(d, { recursive: true });
    await this.ensureDefaultCert();
    if (process.getuid?.() === 0) await this.makeReachableForWorkers();
  }

  /**
   * Apache's workers run as www-data, and a sandbox made with mkdtemp is 0700: give "others" the
   * search bit (x, not r) on the directories between the sandbox root and the web root, and
   * refuse to start when a directory above the sandbox blocks the way.
   */
  private async makeReachableForWorkers(): Promise<void> {
    const root = path.resolve(this.layout.root);
    const chain: string[] = [];
    for (let d = path.resolve(this.wwwRoot); ; d = path.dirname(d)) {
      chain.push(d);
      if (d === root || d === path.dirname(d)) break;
    }
    for (const d of chain) {
      const st = await fsp.stat(d);
      if ((st.mode & 0o001) === 0) await fsp.chmod(d, (st.mode & 0o7777) | 0o001);
    }
    for (let d = path.dirname(root); ; d = path.dirname(d)) {
      const st = await fsp.stat(d);
      if ((st.mode & 0o001) === 0)
        throw new Error(
          `Apache's workers (www-data) cannot pass through ${d}; put the sandbox somewhere they can reach (e.g. under /tmp)`,
        );
      if (d === path.dirname(d)) break;
    }
  }

  private mainConfText(port: number): string {
    const files = {
      confDir: this.confDir,
      pidFile: this.pidFile,
      runDir: this.runDir,
      errorLog: this.errorLog,
      sitesEnabled: this.sitesEnabled,
      defaultCert: this.defaultCert,
      defaultKey: this.defaultKey,
    };
    return sandboxMainConf(files, port, this.httpsPort, process.getuid?.() === 0);
  }

  async configTest(candidate?: string): Promise<CheckResult> {
    const args = ['-t', '-D', 'DUMP_INCLUDES', '-f', this.mainConf];
    if (candidate !== undefined) args.push('-c', `Include "${checkPath(candidate, 'vhost')}"`);
    return checkerResult(await this.exec('apache2', args, { timeoutMs: 30_000 }), this.confDir);
  }

  /** The pid of our running Apache (checked against its command line), or null. */
  private async runningPid(): Promise<number | null> {
    const pid = pidFromText(await readIfExists(this.pidFile));
    if (pid === null || !isAlive(pid)) return null;
    const cmdline = await readIfExists(`/proc/${pid}/cmdline`);
    if (cmdline === null || !cmdline.split('\0').includes(this.mainConf)) return null;
    return pid;
  }

  async start(): Promise<void> {
    await this.prepare();
    const info = await this.readInfo();
    const adopted = await this.runningPid();
    if (adopted !== null && info !== null) {
      // An Apache left running by a previous agent process (e.g. one that was killed): keep it.
      this.port = info.port;
      this.httpsPort = info.httpsPort ?? (await freeLoopbackPort());
      await atomicWrite(this.mainConf, this.mainConfText(info.port));
      const t = await this.configTest();
      if (!t.ok) throw new Error(`Apache config test failed: ${t.output}`);
      const r = await this.reload();
      if (!r.ok) throw new Error(`Apache did not reload: ${r.output}`);
      this.logger.info({ pid: adopted, port: info.port }, 'adopted the running sandbox Apache');
      this.watch();
      return;
    }
    if (adopted !== null) await stopPid(adopted, 10_000);
    let lastError = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = this.fixedPorts?.http ?? (await freeLoopbackPort());
      this.httpsPort = this.fixedPorts?.https ?? (await freeLoopbackPort());
      if (this.httpsPort === port) continue;
      await atomicWrite(this.mainConf, this.mainConfText(port));
      const t = await this.configTest();
      if (!t.ok) throw new Error(`Apache config test failed: ${t.output}`);
      const r = await this.launch();
      if (r.ok) {
        this.port = port;
        const pid = await this.runningPid();
        const info: SandboxApacheInfo = {
          port,
          httpsPort: this.httpsPort,
          url: this.url() ?? '',
          pid: pid ?? 0,
        };
        await atomicWrite(this.infoFile, `${JSON.stringify(info)}\n`);
        this.logger.info({ port, pid }, 'sandbox Apache started');
        this.watch();
        return;
      }
      lastError = r.output;
      if (!/AH00072|make_sock|Address already in use/.test(r.output)) break; // only a port race is worth a retry
    }
    throw new Error(`the sandbox Apache did not start: ${lastError}`);
  }

  /** Starts the private Apache (callers made sure ours is not running). */
  private async launch(): Promise<CheckResult> {
    // A stale pid file naming a recycled pid would make Apache believe it already runs.
    await fsp.rm(this.pidFile, { force: true });
    const offset = await logSize(this.errorLog);
    const r = await this.exec('apache2', ['-f', this.mainConf, '-k', 'start'], { timeoutMs: 30_000 });
    // Once its main error log is open, Apache reports there (e.g. a vhost log it cannot open).
    if (r.code !== 0) {
      const output = [outputOf(r), (await logSince(this.errorLog, offset)).trim()].filter(Boolean).join('\n');
      return explained({ ok: false, output }, this.writesTo());
    }
    return explained(await waitForReady(this.errorLog, offset, null), this.writesTo());
  }

  /** Where Apache writes at start: pid file and runtime files, its error log, the site logs. */
  private writesTo(): string[] {
    return [this.runDir, this.logDir, this.wwwRoot];
  }

  private async readInfo(): Promise<SandboxApacheInfo | null> {
    try {
      const v = JSON.parse((await readIfExists(this.infoFile)) ?? 'null') as SandboxApacheInfo | null;
      return v !== null && Number.isInteger(v.port) && v.port > 0 && v.port < 65536 ? v : null;
    } catch {
      return null;
    }
  }

  reload(): Promise<CheckResult> {
    return this.exclusive(async () => {
      const r = await this.reloadNow();
      if (r.ok) this.supervisor.recovered();
      return r;
    });
  }

  private async reloadNow(): Promise<CheckResult> {
    const pid = await this.runningPid();
    if (pid === null) {
      // Not running (a previous reload killed it, or someone stopped it): start it on its port.
      if (this.port === null) return { ok: false, output: 'The sandbox Apache is not running.' };
      await atomicWrite(this.mainConf, this.mainConfText(this.port));
      return this.launch();
    }
    const offset = await logSize(this.errorLog);
    process.kill(pid, 'SIGUSR1'); // Apache's graceful restart (what `apache2 -k graceful` sends)
    return explained(await waitForReady(this.errorLog, offset, pid), this.writesTo());
  }

  async stop(): Promise<void> {
    this.supervisor.stop();
    if (this.watcher !== null) clearInterval(this.watcher);
    this.watcher = null;
    const pid = await this.runningPid();
    if (pid !== null) await stopPid(pid, 10_000);
    await fsp.rm(this.infoFile, { force: true });
    this.port = null;
  }
}
