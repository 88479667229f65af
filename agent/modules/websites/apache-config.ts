import type { CheckResult } from './apache.ts';
import {
  describeFaults,
  logTargets,
  parseIncludes,
  startFaults,
  withoutIncludeList,
} from './apache-startcheck.ts';

/** Config text the Apache adapters write, and the checks on what goes into it (pure). */

// Paths are written into Apache config; anything outside this set is refused at start.
const SAFE_PATH = /^\/[A-Za-z0-9._@+/-]*$/;
export const checkPath = (p: string, what: string): string => {
  if (!SAFE_PATH.test(p))
    throw new Error(
      `the ${what} path ${JSON.stringify(p)} contains characters PonIO will not write into an Apache config`,
    );
  return p;
};

/**
 * The outcome of `apache2 -t -D DUMP_INCLUDES` (the checker, listing the files it read): when it
 * passed, the log files of those files are checked too (apache-startcheck.ts).
 */
export async function checkerResult(
  r: { code: number; stdout: string; stderr: string },
  serverRoot: string,
  env?: ReadonlyMap<string, string>,
): Promise<CheckResult> {
  const output = outputOf({ stdout: withoutIncludeList(r.stdout), stderr: r.stderr });
  if (r.code !== 0) return { ok: false, output };
  const logs = await logTargets(parseIncludes(r.stdout), serverRoot, env);
  const faults = await startFaults(logs);
  return faults.length > 0
    ? { ok: false, output: describeFaults(faults), faults, logs }
    : { ok: true, output, logs };
}

/** The last lines of a program's output, for the admin. */
export const outputOf = (r: { stdout: string; stderr: string }): string =>
  `${r.stderr}${r.stdout}`.trim().split('\n').slice(-40).join('\n');

/** The modules the sandbox Apache loads. */
export const SANDBOX_MODULES = [
  'ssl',
  'socache_shmcb',
  'headers',
  'mpm_event',
  'authz_core',
  'dir',
  'mime',
  'alias',
  'proxy',
  'proxy_fcgi',
] as const;
export const MODULE_DIR = '/usr/lib/apache2/modules';

/** Where the sandbox Apache keeps its things (all under the sandbox directory). */
export interface SandboxApacheFiles {
  confDir: string;
  pidFile: string;
  runDir: string;
  errorLog: string;
  sitesEnabled: string;
  /** The default HTTPS vhost's self-signed certificate (names no site). */
  defaultCert: string;
  defaultKey: string;
}

/** The sandbox Apache's main config: listens on 127.0.0.1:`port`, includes sites-enabled. */
export function sandboxMainConf(
  f: SandboxApacheFiles,
  port: number,
  httpsPort: number,
  asRoot: boolean,
): string {
  return [
    '# Private Apache of the PonIO sandbox; written by the agent at every start.',
    `ServerRoot "${f.confDir}"`,
    `Define PONIO_HTTP_PORT ${port}`,
    `Define PONIO_HTTPS_PORT ${httpsPort}`,
    'ServerName localhost',
    `PidFile "${f.pidFile}"`,
    `DefaultRuntimeDir "${f.runDir}"`,
    `ErrorLog "${f.errorLog}"`,
    'LogLevel warn',
    ...(asRoot ? ['User www-data', 'Group www-data'] : []),
    'Listen 127.0.0.1:${PONIO_HTTP_PORT}',
    'Listen 127.0.0.1:${PONIO_HTTPS_PORT} https',
    ...SANDBOX_MODULES.map((m) => `LoadModule ${m}_module ${MODULE_DIR}/mod_${m}.so`),
    'TypesConfig /etc/mime.types',
    'DirectoryIndex index.html',
    'Timeout 30',
    'KeepAlive On',
    'KeepAliveTimeout 2',
    'HostnameLookups Off',
    'ServerTokens Prod',
    'StartServers 1',
    'ServerLimit 4',
    'ThreadsPerChild 8',
    'MaxRequestWorkers 16',
    'MinSpareThreads 4',
    'MaxSpareThreads 16',
    'LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined',
    '<Directory />',
    '    Options FollowSymLinks',
    '    AllowOverride None',
    '    Require all denied',
    '</Directory>',
    '<FilesMatch "^\\.ht">',
    '    Require all denied',
    '</FilesMatch>',
    `SSLSessionCache "shmcb:${f.runDir}/ssl_scache(512000)"`,
    'SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1',
    '# Default vhosts: a Host: name no site claims gets 404.',
    '<VirtualHost *:${PONIO_HTTP_PORT}>',
    '    ServerName default.invalid',
    '    Redirect 404 /',
    '</VirtualHost>',
    '<VirtualHost *:${PONIO_HTTPS_PORT}>',
    '    ServerName default.invalid',
    '    SSLEngine on',
    `    SSLCertificateFile "${f.defaultCert}"`,
    `    SSLCertificateKeyFile "${f.defaultKey}"`,
    '    Redirect 404 /',
    '</VirtualHost>',
    `IncludeOptional "${f.sitesEnabled}/*.conf"`,
    '',
  ].join('\n');
}
