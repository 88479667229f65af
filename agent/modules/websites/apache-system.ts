import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Exec } from '../../os/exec.ts';
import { readIfExists } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';
import { isAlive, pidFromText, systemServiceState } from '../../os/process.ts';
import type { ServiceStatus } from '../../../shared/protocol/hello.ts';
import { available, unavailable, type ModuleAvailability } from '../types.ts';
import type { ApacheHost, CheckResult } from './apache.ts';
import { checkerResult, checkPath, outputOf } from './apache-config.ts';
import { envvarsOf } from './apache-startcheck.ts';
import { explained, logSize, waitForReady } from './apache-log.ts';
import { apacheMissing } from './probe.ts';

interface RuntimeFiles {
  errorLog: string;
  pidFile: string;
}

/** System mode: Debian's apache2 (/etc/apache2, apache2ctl, systemctl when systemd runs). */
export class SystemApache implements ApacheHost {
  readonly mode = 'system' as const;
  readonly confDir = '/etc/apache2';
  readonly sitesAvailable = '/etc/apache2/sites-available';
  readonly sitesEnabled = '/etc/apache2/sites-enabled';
  readonly wwwRoot: string;
  readonly vhostListen = '*:80';
  readonly httpsListen = '*:443';
  readonly httpsPortSuffix = '';
  /** Learned at start (and after each reload): where to watch a reload happen. */
  private runtime: RuntimeFiles | null = null;

  constructor(
    layout: HostLayout,
    private readonly exec: Exec,
  ) {
    this.wwwRoot = checkPath(layout.wwwRoot, 'web root');
  }

  availability(): ModuleAvailability {
    const missing = apacheMissing('system');
    if (missing) return missing;
    if (!existsSync(this.sitesAvailable) || !existsSync(path.join(this.confDir, 'apache2.conf')))
      return unavailable(
        `Apache's Debian layout (${this.confDir}/sites-available) was not found on this host.`,
      );
    return available();
  }

  moduleEnabled(name: string): boolean {
    return /^[a-z0-9_]+$/.test(name) && existsSync(path.join(this.confDir, 'mods-enabled', `${name}.load`));
  }

  httpsUrl(): undefined {
    return undefined;
  }

  url(): undefined {
    return undefined;
  }

  async prepare(): Promise<void> {
    await fsp.mkdir(this.sitesEnabled, { recursive: true });
    await fsp.mkdir(this.wwwRoot, { recursive: true });
  }

  async start(): Promise<void> {
    await this.prepare();
    this.runtime = await this.readRuntime();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  service(): ServiceStatus | undefined {
    return this.runtime === null ? undefined : systemServiceState('apache2', this.runtime.pidFile);
  }

  async configTest(candidate?: string): Promise<CheckResult> {
    // Debian's own ctl (it reads /etc/apache2/envvars and creates the runtime dirs) passes the
    // arguments through to apache2 as "$@"; with a candidate, `-c 'Include FILE'`.
    // `-D DUMP_INCLUDES` lists the files read, whose log files are then checked.
    const args = ['-t', '-D', 'DUMP_INCLUDES'];
    if (candidate !== undefined) args.push('-c', `Include "${checkPath(candidate, 'vhost')}"`);
    const r = await this.exec('apache2ctl', args, { timeoutMs: 30_000 });
    return checkerResult(r, this.confDir, await envvarsOf(path.join(this.confDir, 'envvars')));
  }

  /** Apache's main error log and pid file, from its own dump of the run-time config; null if unreadable. */
  private async readRuntime(): Promise<RuntimeFiles | null> {
    const r = await this.exec('apache2ctl', ['-t', '-D', 'DUMP_RUN_CFG'], { timeoutMs: 30_000 });
    const text = `${r.stdout}\n${r.stderr}`;
    const errorLog = /^Main ErrorLog: "(\/[^"]+)"$/m.exec(text)?.[1];
    const pidFile = /^PidFile: "(\/[^"]+)"$/m.exec(text)?.[1];
    return r.code === 0 && errorLog !== undefined && pidFile !== undefined ? { errorLog, pidFile } : null;
  }

  async reload(): Promise<CheckResult> {
    const systemd = existsSync('/run/systemd/system');
    const rt = this.runtime;
    let pid = rt === null ? null : pidFromText(await readIfExists(rt.pidFile));
    let died = false;
    if (rt !== null && pid !== null && !isAlive(pid)) {
      died = true;
      // Apache died (a restart that failed) and left its pid file, naming a zombie until PID 1
      // reaps it: httpd would take that for a running server and signal it instead of starting
      // (the graceful of a stopped Apache starts it). systemd keeps its own account of the unit.
      if (!systemd) await fsp.rm(rt.pidFile, { force: true });
      pid = null;
    }
    const offset = rt === null ? 0 : await logSize(rt.errorLog);
    const r = systemd
      ? // A unit whose Apache died (a failed restart) cannot be reloaded: start it again.
        await this.exec('systemctl', [died ? 'reload-or-restart' : 'reload', 'apache2'], {
          timeoutMs: 60_000,
        })
      : await this.exec('apache2ctl', ['graceful'], { timeoutMs: 60_000 });
    if (r.code !== 0) return { ok: false, output: outputOf(r) };
    if (rt === null) {
      this.runtime = await this.readRuntime();
      return { ok: true, output: outputOf(r) };
    }
    // Both only signal Apache: the restart happens after they returned, and it can still fail
    // (a log that cannot be opened passes `apache2 -t`), taking every site down.
    const [ready, fresh] = await Promise.all([waitForReady(rt.errorLog, offset, pid), this.readRuntime()]);
    this.runtime = fresh ?? rt;
    return explained(ready, [path.dirname(rt.pidFile), path.dirname(rt.errorLog), this.wwwRoot]);
  }
}
