import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PhpVersion } from '../../../shared/protocol/events/websites.ts';
import type { Exec } from '../../os/exec.ts';
import { readIfExists } from '../../os/files.ts';
import { isAlive, pidFromText } from '../../os/process.ts';
import type { CheckResult } from './apache.ts';
import { outputOf } from './apache-config.ts';
import { logSize } from './apache-log.ts';
import type { PhpFpmHost } from './php-fpm.ts';
import { fpmTest, installedVersions, signalReload } from './php-fpm-process.ts';

/**
 * System mode: Debian's php<v>-fpm. Pools in /etc/php/<v>/fpm/pool.d/ (the package's
 * php-fpm.conf includes them), sockets in /run/php/, `php-fpm<v> -t`, and `systemctl reload
 * php<v>-fpm` when systemd runs, else SIGUSR2 to the pid in /run/php/php<v>-fpm.pid.
 */
export class SystemPhpFpm implements PhpFpmHost {
  constructor(private readonly exec: Exec) {}

  versions(): PhpVersion[] {
    return installedVersions().filter((v) => existsSync(this.poolDir(v)));
  }

  unavailable(): string | undefined {
    return this.versions().length > 0
      ? undefined
      : 'php-fpm is not installed on this host (apt-get install php8.2-fpm).';
  }

  poolDir(v: PhpVersion): string {
    return `/etc/php/${v}/fpm/pool.d`;
  }

  socketPath(_v: PhpVersion, pool: string): string {
    return path.join('/run/php', `${pool}.sock`);
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  configTest(v: PhpVersion): Promise<CheckResult> {
    return fpmTest(this.exec, v);
  }

  async reload(v: PhpVersion): Promise<CheckResult> {
    if (existsSync('/run/systemd/system')) {
      const r = await this.exec('systemctl', ['reload', `php${v}-fpm`], { timeoutMs: 60_000 });
      return { ok: r.code === 0, output: outputOf(r) };
    }
    const pid = pidFromText(await readIfExists(`/run/php/php${v}-fpm.pid`));
    if (pid === null || !isAlive(pid))
      return { ok: false, output: `php${v}-fpm is not running; start it (service php${v}-fpm start).` };
    const log = `/var/log/php${v}-fpm.log`;
    return signalReload(pid, log, await logSize(log));
  }

  writesIn(): string[] {
    return this.versions().map((v) => this.poolDir(v));
  }
}
