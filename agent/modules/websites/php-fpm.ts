import type { Logger } from 'pino';
import type { PhpVersion } from '../../../shared/protocol/events/websites.ts';
import type { Exec } from '../../os/exec.ts';
import type { HostLayout } from '../../os/layout.ts';
import type { CheckResult } from './apache.ts';
import { SandboxPhpFpm } from './php-fpm-sandbox.ts';
import { SystemPhpFpm } from './php-fpm-system.ts';

/**
 * Where php-fpm keeps its pools on this host and how to check and reload it, per PHP version
 * (design §6; one php-fpm master per version, as Debian ships them). System mode: Debian's
 * php<v>-fpm (/etc/php/<v>/fpm/pool.d, systemctl reload), php-fpm-system.ts. Sandbox: a private
 * master per version under the sandbox directory, supervised like the other sandbox services,
 * php-fpm-sandbox.ts.
 */
export interface PhpFpmHost {
  /** Installed versions PonIO can run sites on (empty with `unavailable()` saying why). */
  versions(): PhpVersion[];
  unavailable(): string | undefined;
  poolDir(version: PhpVersion): string;
  /** Where a pool's socket lives (Apache's proxy_fcgi connects to it). */
  socketPath(version: PhpVersion, pool: string): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** `php-fpm<v> -t` on the config the master reads (its pool.d included). */
  configTest(version: PhpVersion): Promise<CheckResult>;
  /** Graceful reload (SIGUSR2); resolves once the master reports it is ready again. */
  reload(version: PhpVersion): Promise<CheckResult>;
  /** Directories written atomically (temp files swept at start). */
  writesIn(): string[];
}

export function createPhpFpmHost(layout: HostLayout, exec: Exec, logger: Logger): PhpFpmHost {
  return layout.mode === 'system' ? new SystemPhpFpm(exec) : new SandboxPhpFpm(layout, exec, logger);
}
