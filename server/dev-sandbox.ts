import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PanelContext } from './context.ts';
import { createCsr, publicKeyFromCsr } from '../shared/pki/index.ts';
import { needsRenewal } from './hosts/pki-store.ts';
import { canBind, freeLoopbackPort, stopChild } from '../agent/os/process.ts';
import { lockHolder } from '../shared/agent-lock.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SANDBOX_HOST_ID = 'sandbox';

export interface DevSandbox {
  hostId: string;
  dir: string;
  logFile: string;
  child: ChildProcess;
  /** Resolves when the sandbox host is online (rejects after the timeout). */
  online: Promise<void>;
  stop(): Promise<void>;
}

export const SANDBOX_NETNS = 'ponio-sandbox';

/** A copy of `o` without `keys`. */
const without = (o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));

/** Creates the sandbox firewall's network namespace when missing; false when it cannot exist. */
async function ensureSandboxNetns(ctx: PanelContext): Promise<boolean> {
  if (existsSync(`/run/netns/${SANDBOX_NETNS}`)) return true;
  if (process.getuid?.() !== 0) return false;
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'add', SANDBOX_NETNS], { timeout: 10_000 }, (err) => {
      if (err)
        ctx.logger.warn(
          { err: err.message },
          'cannot create the sandbox network namespace (Debian package iproute2); the Firewall tab stays unavailable',
        );
      resolve(!err && existsSync(`/run/netns/${SANDBOX_NETNS}`));
    });
  });
}

/**
 * A sandbox agent still running from an earlier `npm start` whose panel was killed (-9: no exit
 * hook ran) holds the sandbox's state-directory lock; a second agent would refuse to start (and
 * used to run beside it, re-applying stale state). It is stopped (SIGTERM, then SIGKILL after
 * 30 s), so exactly one agent serves the sandbox.
 */
async function stopOrphanAgent(ctx: PanelContext, stateDir: string): Promise<void> {
  const holder = await lockHolder(stateDir);
  if (!holder) return;
  ctx.logger.warn({ pid: holder.pid }, 'stopping the sandbox agent an earlier panel left running');
  const gone = async (ms: number): Promise<boolean> => {
    for (const end = Date.now() + ms; Date.now() < end;) {
      if (!(await lockHolder(stateDir))) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };
  try {
    process.kill(holder.pid, 'SIGTERM');
    if (await gone(30_000)) return;
    process.kill(holder.pid, 'SIGKILL');
    await gone(5_000);
  } catch {
    /* already gone */
  }
}

/** True when the stored certificate was issued by this CA for this host and is not due for renewal. */
function certStillGood(ctx: PanelContext, certFile: string, caFile: string): boolean {
  try {
    const pem = readFileSync(certFile, 'utf8');
    const ca = readFileSync(caFile, 'utf8');
    if (ca.trim() !== ctx.pki.ca.certPem.trim() || needsRenewal(pem)) return false;
    const c = new X509Certificate(pem);
    return c.checkIssued(new X509Certificate(ctx.pki.ca.certPem)) && !ctx.pki.isRevoked(c.serialNumber);
  } catch {
    return false;
  }
}

/**
 * `npm start`'s local sandbox host: a real agent child process (`ponio-agent serve` in sandbox
 * mode under <dataDir>/sandbox, private Apache/proftpd/MariaDB on loopback) holding a host
 * certificate issued by this panel's CA (key generated for it, CSR-style, never reused across
 * CAs), registered as an enrolled host. A second run reuses the directory, the host record and
 * the certificate (renewed when due), and picks a new port only when the old one is taken.
 */
export async function startDevSandbox(
  ctx: PanelContext,
  opts: {
    onlineTimeoutMs?: number;
    /** Reverse mode: the agent dials this (the panel's agent listener) and listens on no port. */
    connect?: string;
  } = {},
): Promise<DevSandbox> {
  const mode = opts.connect ? 'reverse' : 'forward';
  const dir = path.join(ctx.config.dataDir, 'sandbox');
  const etc = path.join(dir, 'etc/ponio-agent');
  mkdirSync(etc, { recursive: true });
  await stopOrphanAgent(ctx, path.join(dir, 'var/lib/ponio-agent'));
  // Apache's workers (www-data) must traverse the data dir to reach the sandbox docroots: make it
  // traverse-only (0711, no listing) and keep the panel's own files private (pki/ is 0700).
  chmodSync(ctx.config.dataDir, 0o711);
  for (const f of ['panel.db', 'panel.db-wal', 'panel.db-shm'])
    if (existsSync(path.join(ctx.config.dataDir, f))) chmodSync(path.join(ctx.config.dataDir, f), 0o600);
  chmodSync(dir, 0o755);
  const cfgFile = path.join(etc, 'config.json');
  const certFile = path.join(etc, 'agent.crt');
  const keyFile = path.join(etc, 'agent.key');
  const caFile = path.join(etc, 'ca.crt');
  const repo = ctx.hosts.repo;
  const row = repo.get(SANDBOX_HOST_ID);
  let port = row?.port ?? 0;
  if (!port || !(await canBind(port))) port = await freeLoopbackPort();
  if (!row) {
    const name = repo.getByName('sandbox') ? `sandbox-${Date.now()}` : 'sandbox';
    repo.insert({ id: SANDBOX_HOST_ID, name, address: '127.0.0.1', port, mode });
  } else if (row.port !== port || row.address !== '127.0.0.1' || row.mode !== mode) {
    repo.update(SANDBOX_HOST_ID, { port, address: '127.0.0.1', mode });
  }
  if (!certStillGood(ctx, certFile, caFile) || !existsSync(keyFile)) {
    const { csrPem, keyPem } = await createCsr('PonIO sandbox agent');
    const issued = await ctx.pki.issueHostCertificate(SANDBOX_HOST_ID, await publicKeyFromCsr(csrPem));
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(certFile, issued.certPem);
    writeFileSync(caFile, ctx.pki.ca.certPem);
    repo.markEnrolled(SANDBOX_HOST_ID, issued.serial, issued.notAfter.getTime());
  }
  let existing: Record<string, unknown> = {};
  try {
    existing = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch {
    /* first run */
  }
  // The sandbox firewall runs in a network namespace of its own, never the machine's firewall
  // (docs/dashboard.md). It is created here when missing and we are root.
  const modules = { ...((existing.modules as Record<string, unknown> | undefined) ?? {}) };
  if (modules.firewall === undefined && (await ensureSandboxNetns(ctx)))
    modules.firewall = { netns: SANDBOX_NETNS };
  writeFileSync(
    cfgFile,
    `${JSON.stringify({ ...without(existing, 'listen', 'connect'), ...(opts.connect ? { connect: [opts.connect] } : { listen: `127.0.0.1:${port}` }), sandbox: dir, logLevel: 'info', modules }, null, 2)}\n`,
  );
  const logFile = path.join(dir, 'agent.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'bin/ponio-agent.js'), 'serve', '--config', cfgFile],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: ROOT,
    },
  );
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // If the panel dies without stopping the sandbox, do not leave the agent behind.
  const orphanGuard = (): void => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.once('exit', orphanGuard);
  const fresh = repo.get(SANDBOX_HOST_ID);
  if (fresh) ctx.hosts.connect(fresh);
  const online = Promise.race([
    ctx.hosts.manager
      .waitForState(SANDBOX_HOST_ID, 'online', opts.onlineTimeoutMs ?? 90_000)
      .then(() => undefined),
    exited.then((code) => {
      throw new Error(`the sandbox agent exited (code ${code}); see ${logFile}`);
    }),
  ]);
  online.catch(() => undefined);
  return {
    hostId: SANDBOX_HOST_ID,
    dir,
    logFile,
    child,
    online,
    async stop() {
      process.off('exit', orphanGuard);
      ctx.hosts.disconnect(SANDBOX_HOST_ID);
      await stopChild(child, 30_000);
      log.end();
    },
  };
}
