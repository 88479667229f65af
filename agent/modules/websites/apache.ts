import type { Logger } from 'pino';
import type { ServiceStatus } from '../../../shared/protocol/hello.ts';
import type { Exec } from '../../os/exec.ts';
import type { HostLayout, HostMode } from '../../os/layout.ts';
import type { ModuleAvailability } from '../types.ts';
import type { LogTarget, StartFault } from './apache-startcheck.ts';
import { SandboxApache } from './apache-sandbox.ts';
import { SystemApache } from './apache-system.ts';

/** The outcome of Apache's own checker or of a reload, with its output for the admin. */
export interface CheckResult {
  ok: boolean;
  output: string;
  /** Files that would stop Apache from starting although the checker accepts them (apache-startcheck.ts). */
  faults?: StartFault[];
  /** The log files the checked config names (what a failed start can be traced back to). */
  logs?: LogTarget[];
}

/**
 * Where Apache keeps its sites on this host and how to check and reload it (design §6). The
 * websites module asks this adapter; it never hard-codes paths or service commands. System mode
 * (Debian's apache2) is apache-system.ts, sandbox mode (a private Apache on a loopback port)
 * apache-sandbox.ts; both watch a reload happen in Apache's error log (apache-log.ts).
 */
export interface ApacheHost {
  readonly mode: HostMode;
  readonly sitesAvailable: string;
  readonly sitesEnabled: string;
  readonly wwwRoot: string;
  /** The address written into `<VirtualHost …>`. */
  readonly vhostListen: string;
  /** The address of a site's HTTPS `<VirtualHost …>` (`*:443`; sandbox `*:${PONIO_HTTPS_PORT}`). */
  readonly httpsListen: string;
  /** What an HTTP→HTTPS redirect appends to the name ('' for 443). */
  readonly httpsPortSuffix: string;
  /** Sandbox: where the private Apache answers HTTPS; undefined in system mode. */
  httpsUrl(): string | undefined;
  availability(): ModuleAvailability;
  /** Where the sites are served (sandbox: the private instance); undefined in system mode. */
  url(): string | undefined;
  /** Creates the directories the module writes to (sandbox); cheap and idempotent. */
  prepare(): Promise<void>;
  /** Sandbox: starts (or adopts) the private Apache. System: nothing. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Apache's config test. With `candidate`, tests the live config plus that vhost file as if it
   * were enabled (`-c "Include FILE"`), without making it live. Also fails (with `faults`) when a
   * file the checker accepts would stop Apache at its next start (apache-startcheck.ts).
   */
  configTest(candidate?: string): Promise<CheckResult>;
  /**
   * Graceful reload; resolves when Apache reports that it runs the new config, or fails when the
   * restart failed (e.g. a log it cannot open: `apache2 -t` does not open logs) or Apache died.
   */
  reload(): Promise<CheckResult>;
  /** Whether an Apache module is loaded by the config (system: mods-enabled/<name>.load). */
  moduleEnabled(name: string): boolean;
  /** Apache's state: supervised in sandbox mode; in system mode `down` when it does not run. */
  service(): ServiceStatus | undefined;
}

export function createApacheHost(
  layout: HostLayout,
  exec: Exec,
  logger: Logger,
  sandboxPorts?: { http: number; https: number },
): ApacheHost {
  return layout.mode === 'system'
    ? new SystemApache(layout, exec)
    : new SandboxApache(layout, exec, logger, sandboxPorts);
}
