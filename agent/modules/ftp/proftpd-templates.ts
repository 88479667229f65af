import path from 'node:path';
import type { HostLayout } from '../../os/layout.ts';
import type { FtpSettings } from './settings.ts';

/** The config text the proftpd adapters write, and where they write it (pure). */

/** Where Debian's proftpd keeps things (overridable for tests of the system adapter). */
export interface SystemPaths {
  /** The main config, which must `Include` the conf.d directory. */
  conf: string;
  confD: string;
  /** PonIO's snippet inside conf.d. */
  snippet: string;
  userFile: string;
  pidFile: string;
  /** Exists when systemd runs (then reloads go through systemctl). */
  systemdMarker: string;
}

export const SYSTEM_PATHS: SystemPaths = {
  conf: '/etc/proftpd/proftpd.conf',
  confD: '/etc/proftpd/conf.d',
  snippet: '/etc/proftpd/conf.d/ponio.conf',
  userFile: '/etc/proftpd/ftpd.passwd',
  pidFile: '/run/proftpd.pid',
  systemdMarker: '/run/systemd/system',
};

/** The conf.d snippet PonIO owns in system mode (pure, for tests and docs). */
export function systemSnippet(userFile: string): string {
  return [
    '# Managed by PonIO (ponio-agent): rewritten by the agent, do not edit by hand.',
    '# Virtual FTP users live in the AuthUserFile below (passwd format, SHA-512 crypt hashes);',
    '# each one is jailed in its home. System accounts still authenticate through mod_auth_unix.',
    '<IfModule mod_auth_file.c>',
    '  AuthOrder mod_auth_file.c mod_auth_unix.c',
    `  AuthUserFile ${userFile}`,
    '</IfModule>',
    'DefaultRoot ~',
    'RequireValidShell off',
    '',
  ].join('\n');
}

/**
 * Apache's sites-available of the host layout: `/etc/apache2/sites-available` in system mode,
 * `<sandbox>/etc/apache2/sites-available` in sandbox mode (where the websites module's Apache
 * adapter keeps vhosts; derived from the layout so the ftp module does not need that module).
 */
export const sitesAvailableOf = (layout: HostLayout): string =>
  path.join(layout.root, 'etc/apache2/sites-available');

export interface SandboxPaths {
  confDir: string;
  configFile: string;
  userFile: string;
  pidFile: string;
  scoreboard: string;
  infoFile: string;
  ftpRoot: string;
}

export function sandboxPaths(layout: HostLayout, settings: FtpSettings): SandboxPaths {
  const confDir = path.join(layout.root, 'etc/proftpd');
  return {
    confDir,
    configFile: path.join(confDir, 'proftpd.conf'),
    userFile: path.join(confDir, 'ftpd.passwd'),
    pidFile: path.join(layout.runDir, 'proftpd.pid'),
    scoreboard: path.join(layout.runDir, 'proftpd.scoreboard'),
    infoFile: path.join(layout.runDir, 'proftpd.json'),
    ftpRoot: settings.ftpRoot ?? path.join(layout.root, 'srv/ftp'),
  };
}

/** The private instance's full configuration (pure). Quoted values never come from requests. */
export function sandboxConfig(p: {
  paths: SandboxPaths;
  layout: HostLayout;
  port: number;
  passivePorts: [number, number];
  user: string;
  group: string;
}): string {
  const q = (s: string): string => `"${s}"`;
  return [
    '# PonIO sandbox proftpd: written by ponio-agent at start, private to this sandbox.',
    'ServerName "PonIO sandbox FTP"',
    'ServerType standalone',
    'ServerIdent on "PonIO sandbox FTP"',
    'DefaultServer on',
    `Port ${p.port}`,
    'DefaultAddress 127.0.0.1',
    'SocketBindTight on',
    'UseIPv6 off',
    'UseReverseDNS off',
    `User ${p.user}`,
    `Group ${p.group}`,
    `PidFile ${q(p.paths.pidFile)}`,
    `ScoreboardFile ${q(p.paths.scoreboard)}`,
    `SystemLog ${q(path.join(p.layout.logDir, 'proftpd.log'))}`,
    `TransferLog ${q(path.join(p.layout.logDir, 'proftpd-xfer.log'))}`,
    'WtmpLog off',
    'UseFtpUsers off',
    '<IfModule mod_delay.c>',
    '  DelayEngine off',
    '</IfModule>',
    '<IfModule mod_ctrls.c>',
    '  ControlsEngine off',
    '</IfModule>',
    'AuthOrder mod_auth_file.c',
    `AuthUserFile ${q(p.paths.userFile)}`,
    'RequireValidShell off',
    'DefaultRoot ~',
    `PassivePorts ${p.passivePorts[0]} ${p.passivePorts[1]}`,
    'MaxInstances 40',
    'MaxLoginAttempts 3',
    'TimeoutIdle 300',
    'Umask 022 022',
    'AllowOverwrite on',
    '',
  ].join('\n');
}
