import type { ServiceStatus } from '../../../shared/protocol/hello.ts';
import type { HostLayout } from '../../os/layout.ts';
import type { ModuleAvailability } from '../types.ts';
import type { Account } from './accounts.ts';

/**
 * The proftpd host adapter (design §6): where the user file and config live, how the config is
 * checked and how the daemon is reloaded. The module never hard-codes any of it.
 *
 * - system (proftpd-system.ts): Debian's proftpd; PonIO owns only /etc/proftpd/conf.d/ponio.conf
 *   and /etc/proftpd/ftpd.passwd, reloads through systemctl (or SIGHUP to the pid file without
 *   systemd).
 * - sandbox (proftpd-sandbox.ts): a private proftpd with its own config, user file,
 *   pid/scoreboard files, logs, loopback port and passive port range, all under the sandbox
 *   directory; started and stopped by the module.
 *
 * The config text both write is in proftpd-templates.ts; checking the config and finding the
 * daemon's processes in proftpd-process.ts.
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
  /** The daemon's state: supervised in sandbox mode; in system mode `down` when it does not run. */
  service(): ServiceStatus | undefined;
}

export { createSystemAdapter, proftpdRuntimeUser, SYSTEM_PATHS, type SystemPaths } from './proftpd-system.ts';
export { createSandboxAdapter } from './proftpd-sandbox.ts';
export { sandboxConfig, sandboxPaths, systemSnippet, type SandboxPaths } from './proftpd-templates.ts';
