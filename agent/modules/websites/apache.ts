import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { atomicWrite, readIfExists } from '../../os/files.ts';
import type { Exec } from '../../os/exec.ts';
import type { HostLayout, HostMode } from '../../os/layout.ts';
import { available, unavailable, type ModuleAvailability } from '../types.ts';
import { apacheMissing } from './probe.ts';

/** The outcome of Apache's own checker or of a reload, with its output for the admin. */
export interface CheckResult {
  ok: boolean;
  output: string;
}

/**
 * Where Apache keeps its sites on this host and how to check and reload it (design §6). The
 * websites module asks this adapter; it never hard-codes paths or service commands.
 */
export interface ApacheHost {
  readonly mode: HostMode;
  readonly sitesAvailable: string;
  readonly sitesEnabled: string;
  readonly wwwRoot: string;
  /** The address written into `<VirtualHost …>`. */
  readonly vhostListen: string;
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
   * were enabled (`-c "Include FILE"`), without making it live.
   */
  configTest(candidate?: string): Promise<CheckResult>;
  /**
   * Graceful reload; resolves when Apache reports that it runs the new config, or fails when the
   * restart failed (e.g. a log it cannot open: `apache2 -t` does not open logs) or Apache died.
   */
  reload(): Promise<CheckResult>;
}

// Paths are written into Apache config; anything outside this set is refused at start.
const SAFE_PATH = /^\/[A-Za-z0-9._@+/-]*$/;
const checkPath = (p: string, what: string): string => {
  if (!SAFE_PATH.test(p))
    throw new Error(
      `the ${what} path ${JSON.stringify(p)} contains characters PonIO will not write into an Apache config`,
    );
  return p;
};

const outputOf = (r: { stdout: string; stderr: string }): string =>
  `${r.stderr}${r.stdout}`.trim().split('\n').slice(-40).join('\n');

export function createApacheHost(layout: HostLayout, exec: Exec, logger: Logger): ApacheHost {
  return layout.mode === 'system' ? new SystemApache(layout, exec) : new SandboxApache(layout, exec, logger);
}

// --- both modes: Apache reports each new generation in its main error log -----------------

const READY = /AH00489|resuming normal operations/;
const FAILED =
  /AH00015|AH00016|AH00072|AH00076|no listening sockets|Configuration Failed|Unable to open logs/;

/** Whether a process runs (a zombie does not: PID 1 of a container may reap it seconds later). */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function logSize(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return 0;
  }
}

/** What Apache appended to `file` after `offset` (all of it when the log was rotated meanwhile). */
async function logSince(file: string, offset: number): Promise<string> {
  let fh;
  try {
    fh = await fsp.open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await fh.stat();
    const from = size < offset ? 0 : offset;
    if (size <= from) return '';
    const buf = Buffer.alloc(Math.min(size - from, 256 * 1024));
    await fh.read(buf, 0, buf.length, from);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Waits until Apache logs "resuming normal operations" in its main error log after `offset`, a
 * failure, or the death of `pid` (the server that was signalled).
 */
async function waitForReady(
  errorLog: string,
  offset: number,
  pid: number | null,
  timeoutMs = 15_000,
): Promise<CheckResult> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    const text = await logSince(errorLog, offset);
    if (READY.test(text)) return { ok: true, output: '' };
    if (FAILED.test(text)) return { ok: false, output: text.trim().split('\n').slice(-20).join('\n') };
    if (pid !== null && !isAlive(pid))
      return { ok: false, output: text.trim() || 'Apache exited during the reload.' };
    if (Date.now() > deadline)
      return {
        ok: false,
        output: `Apache did not report ready within ${timeoutMs / 1000} s. ${text.trim()}`,
      };
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

async function pidIn(file: string): Promise<number | null> {
  const pid = Number((await readIfExists(file))?.trim());
  return Number.isInteger(pid) && pid > 1 ? pid : null;
}

// --- system mode: Debian's apache2 --------------------------------------------------------

interface RuntimeFiles {
  errorLog: string;
  pidFile: string;
}

class SystemApache implements ApacheHost {
  readonly mode = 'system' as const;
  readonly confDir = '/etc/apache2';
  readonly sitesAvailable = '/etc/apache2/sites-available';
  readonly sitesEnabled = '/etc/apache2/sites-enabled';
  readonly wwwRoot: string;
  readonly vhostListen = '*:80';
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

  async configTest(candidate?: string): Promise<CheckResult> {
    // Debian's own ctl (it reads /etc/apache2/envvars and creates the runtime dirs); with a
    // candidate, `-t -c 'Include FILE'` is passed through to apache2 as "$@".
    const args =
      candidate === undefined ? ['configtest'] : ['-t', '-c', `Include "${checkPath(candidate, 'vhost')}"`];
    const r = await this.exec('apache2ctl', args, { timeoutMs: 30_000 });
    return { ok: r.code === 0, output: outputOf(r) };
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
    let pid = rt === null ? null : await pidIn(rt.pidFile);
    if (rt !== null && pid !== null && !isAlive(pid)) {
      // Apache died (a restart that failed) and left its pid file, naming a zombie until PID 1
      // reaps it: httpd would take that for a running server and signal it instead of starting
      // (the graceful of a stopped Apache starts it). systemd keeps its own account of the unit.
      if (!systemd) await fsp.rm(rt.pidFile, { force: true });
      pid = null;
    }
    const offset = rt === null ? 0 : await logSize(rt.errorLog);
    const r = systemd
      ? await this.exec('systemctl', ['reload', 'apache2'], { timeoutMs: 60_000 })
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
    return ready;
  }
}

// --- sandbox mode: a private Apache on a loopback port -----------------------------------

const MODULES = ['mpm_event', 'authz_core', 'dir', 'mime', 'alias'] as const;
const MODULE_DIR = '/usr/lib/apache2/modules';

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The sandbox's state file (<runDir>/apache.json): where the private Apache listens. */
export interface SandboxApacheInfo {
  port: number;
  url: string;
  pid: number;
}

class SandboxApache implements ApacheHost {
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

  constructor(
    private readonly layout: HostLayout,
    private readonly exec: Exec,
    private readonly logger: Logger,
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
  }

  availability(): ModuleAvailability {
    const missing = apacheMissing('sandbox');
    if (missing) return missing;
    for (const m of MODULES) {
      if (!existsSync(path.join(MODULE_DIR, `mod_${m}.so`)))
        return unavailable(`The Apache module mod_${m} is missing (${MODULE_DIR}).`);
    }
    return available();
  }

  url(): string | undefined {
    return this.port === null ? undefined : `http://127.0.0.1:${this.port}/`;
  }

  async prepare(): Promise<void> {
    for (const d of [this.sitesAvailable, this.sitesEnabled, this.wwwRoot, this.runDir, this.logDir])
      await fsp.mkdir(d, { recursive: true });
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
    const asRoot = process.getuid?.() === 0;
    return [
      '# Private Apache of the PonIO sandbox; written by the agent at every start.',
      `ServerRoot "${this.confDir}"`,
      `Define PONIO_HTTP_PORT ${port}`,
      'ServerName localhost',
      `PidFile "${this.pidFile}"`,
      `DefaultRuntimeDir "${this.runDir}"`,
      `ErrorLog "${this.errorLog}"`,
      'LogLevel warn',
      ...(asRoot ? ['User www-data', 'Group www-data'] : []),
      'Listen 127.0.0.1:${PONIO_HTTP_PORT}',
      ...MODULES.map((m) => `LoadModule ${m}_module ${MODULE_DIR}/mod_${m}.so`),
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
      '# Default vhost: a Host: name no site claims gets 404.',
      '<VirtualHost *:${PONIO_HTTP_PORT}>',
      '    ServerName default.invalid',
      '    Redirect 404 /',
      '</VirtualHost>',
      `IncludeOptional "${this.sitesEnabled}/*.conf"`,
      '',
    ].join('\n');
  }

  async configTest(candidate?: string): Promise<CheckResult> {
    const args = ['-t', '-f', this.mainConf];
    if (candidate !== undefined) args.push('-c', `Include "${checkPath(candidate, 'vhost')}"`);
    const r = await this.exec('apache2', args, { timeoutMs: 30_000 });
    return { ok: r.code === 0, output: outputOf(r) };
  }

  /** The pid of our running Apache (checked against its command line), or null. */
  private async runningPid(): Promise<number | null> {
    const text = await readIfExists(this.pidFile);
    const pid = Number(text?.trim());
    if (!Number.isInteger(pid) || pid <= 1 || !isAlive(pid)) return null;
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
      await atomicWrite(this.mainConf, this.mainConfText(info.port));
      const t = await this.configTest();
      if (!t.ok) throw new Error(`Apache config test failed: ${t.output}`);
      const r = await this.reload();
      if (!r.ok) throw new Error(`Apache did not reload: ${r.output}`);
      this.logger.info({ pid: adopted, port: info.port }, 'adopted the running sandbox Apache');
      return;
    }
    if (adopted !== null) await this.killAndWait(adopted);
    let lastError = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freeLoopbackPort();
      await atomicWrite(this.mainConf, this.mainConfText(port));
      const t = await this.configTest();
      if (!t.ok) throw new Error(`Apache config test failed: ${t.output}`);
      const r = await this.launch();
      if (r.ok) {
        this.port = port;
        const pid = await this.runningPid();
        await atomicWrite(this.infoFile, `${JSON.stringify({ port, url: this.url(), pid: pid ?? 0 })}\n`);
        this.logger.info({ port, pid }, 'sandbox Apache started');
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
    if (r.code !== 0) return { ok: false, output: outputOf(r) };
    return waitForReady(this.errorLog, offset, null);
  }

  private async readInfo(): Promise<SandboxApacheInfo | null> {
    try {
      const v = JSON.parse((await readIfExists(this.infoFile)) ?? 'null') as SandboxApacheInfo | null;
      return v !== null && Number.isInteger(v.port) && v.port > 0 && v.port < 65536 ? v : null;
    } catch {
      return null;
    }
  }

  async reload(): Promise<CheckResult> {
    const pid = await this.runningPid();
    if (pid === null) {
      // Not running (a previous reload killed it, or someone stopped it): start it on its port.
      if (this.port === null) return { ok: false, output: 'The sandbox Apache is not running.' };
      await atomicWrite(this.mainConf, this.mainConfText(this.port));
      return this.launch();
    }
    const offset = await logSize(this.errorLog);
    process.kill(pid, 'SIGUSR1'); // Apache's graceful restart (what `apache2 -k graceful` sends)
    return waitForReady(this.errorLog, offset, pid);
  }

  private async killAndWait(pid: number): Promise<void> {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    const deadline = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < deadline) await sleep(20);
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  async stop(): Promise<void> {
    const pid = await this.runningPid();
    if (pid !== null) await this.killAndWait(pid);
    await fsp.rm(this.infoFile, { force: true });
    this.port = null;
  }
}
