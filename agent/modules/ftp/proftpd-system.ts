import { existsSync, promises as fsp } from 'node:fs';
import type { Logger } from 'pino';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { Exec } from '../../os/exec.ts';
import { atomicWrite, readIfExists } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';
import { systemServiceState } from '../../os/process.ts';
import { available, unavailable } from '../types.ts';
import { systemAccounts, type Account } from './accounts.ts';
import type { ProftpdAdapter } from './proftpd.ts';
import { fileReader, runtimeUserOf } from './proftpd-conf.ts';
import { endUserSessions, proftpdPidIn, runCheck } from './proftpd-process.ts';
import { SYSTEM_PATHS, sitesAvailableOf, systemSnippet, type SystemPaths } from './proftpd-templates.ts';
import { proftpdMissing } from './probe.ts';
import type { FtpSettings } from './settings.ts';

export { SYSTEM_PATHS, type SystemPaths };

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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

/** System mode: Debian's proftpd, configured through PonIO's conf.d snippet. */
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
    const pid = await proftpdPidIn(p.pidFile);
    if (pid === null) {
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
      return endUserSessions(await proftpdPidIn(p.pidFile), username);
    },
    check: () => runCheck(p.conf),
    userFileOwner: owner,
    endpoint: () => null,
    service: () => systemServiceState('proftpd', p.pidFile),
  };
}
