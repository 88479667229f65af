import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { pino, type Logger } from 'pino';
import { PROTOCOL_VERSION, PONIO_VERSION } from '../shared/protocol/version.ts';
import {
  AGENT_FEATURES,
  type Hello,
  type ModuleName,
  type ModuleStatus,
  type ServiceStatus,
} from '../shared/protocol/hello.ts';
import { readTlsFiles, type AgentConfig } from './config.ts';
import { exec } from './os/exec.ts';
import { holdPort } from './os/process.ts';
import { Router } from './rpc/router.ts';
import { AgentLinks } from './link.ts';
import { Journal } from './journal/journal.ts';
import { configureKillPoints } from './journal/kill-point.ts';
import { lockStateDir } from './journal/state-lock.ts';
import { sweepTempFiles } from './journal/sweep.ts';
import { startAgentServer, type AgentServer } from './server.ts';
import type { DialOut } from './dialer.ts';
import { RevocationList } from './trust.ts';
import { createTrustHandlers } from './trust-handlers.ts';
import { settleInstalls } from './trust-files.ts';
import { AgentMetrics } from './metrics.ts';
import { Readiness } from '../shared/health.ts';
import { X509Certificate } from 'node:crypto';
import {
  absentModule,
  type AnyAgentModule,
  type ModuleAvailability,
  type ModuleContext,
  type SiteOwnerEvents,
} from './modules/types.ts';
import { createSystemModule } from './modules/system/index.ts';
import { apacheMissing } from './modules/websites/probe.ts';
import { probeFtp } from './modules/ftp/probe.ts';
import { probeMysql } from './modules/mysql/probe.ts';
import { probeFirewall } from './modules/firewall/probe.ts';
import { probeBackups } from './modules/backups/probe.ts';
import { composeBefore, mergeBackupSources } from './modules/compose.ts';

/**
 * A domain whose code is loaded only when its service may be there: `probe` tells cheaply (from
 * the config and the installed programs, with the exact reason the module itself would give)
 * that it is absent, and then the module is never loaded. A missing service costs nothing.
 */
/** websites → ftp: a site's files changed owner (ModuleContext.siteOwners). */
function siteOwnerEvents(): SiteOwnerEvents {
  const listeners: Array<(domain: string) => void> = [];
  return {
    changed: (domain) => {
      for (const l of listeners) l(domain);
    },
    onChanged: (l) => void listeners.push(l),
  };
}

interface OptionalModule {
  name: Exclude<ModuleName, 'system'>;
  probe(ctx: ModuleContext): ModuleAvailability | null;
  load(): Promise<(ctx: ModuleContext) => AnyAgentModule>;
}

const OPTIONAL_MODULES: readonly OptionalModule[] = [
  {
    name: 'websites',
    probe: (ctx) => apacheMissing(ctx.layout.mode),
    load: async () => (await import('./modules/websites/index.ts')).createWebsitesModule,
  },
  {
    name: 'ftp',
    probe: (ctx) => probeFtp(ctx.moduleSettings?.ftp),
    load: async () => (await import('./modules/ftp/index.ts')).createFtpModule,
  },
  {
    name: 'mysql',
    probe: (ctx) => probeMysql(ctx.layout.mode, ctx.moduleSettings?.mysql),
    load: async () => (await import('./modules/mysql/index.ts')).createMysqlModule,
  },
  {
    name: 'firewall',
    probe: (ctx) => probeFirewall(ctx.layout.mode, ctx.moduleSettings?.firewall),
    load: async () => (await import('./modules/firewall/index.ts')).createFirewallModule,
  },
  // Last: it backs up what the modules above name (their backup sources) and hooks their deletes.
  {
    name: 'backups',
    probe: () => probeBackups(),
    load: async () => (await import('./modules/backups/index.ts')).createBackupsModule,
  },
];

/** The certificate the agent serves is within its validity (renewal keeps it so). */
const certificateValid = (pem: string): boolean => {
  const c = new X509Certificate(pem);
  const now = Date.now();
  return Date.parse(c.validFrom) <= now && now < Date.parse(c.validTo);
};

export interface RunningAgent {
  /** The listening port (forward mode); 0 in reverse mode. */
  port: number;
  /** Forward mode: the TLS listener the panel dials. */
  server: AgentServer | null;
  /** Reverse mode: the dial-out to the panel's agent listener. */
  dialOut: DialOut | null;
  /** The live links to the panel and their TLS material. */
  links: AgentLinks;
  logger: Logger;
  revocations: RevocationList;
  stop(): Promise<void>;
}

/** Creates and wires the agent's parts. No work happens at import time. */
export async function startAgent(
  cfg: AgentConfig,
  logger: Logger = pino({ level: cfg.logLevel }),
): Promise<RunningAgent> {
  const layout = cfg.layout;
  // Bad TLS files are bad input: refused before anything on the host is touched (and before the
  // state lock, so the message names the file, not another agent holding the lock).
  readTlsFiles(cfg, { pair: false });
  await fsp.mkdir(layout.stateDir, { recursive: true, mode: 0o700 });
  // One agent per state directory (a second one would re-apply stale state over the first's).
  const releaseLock = await lockStateDir(layout.stateDir);
  try {
    return await startLocked(cfg, logger, releaseLock);
  } catch (e) {
    await releaseLock();
    throw e;
  }
}

async function startLocked(
  cfg: AgentConfig,
  logger: Logger,
  releaseLock: () => Promise<void>,
): Promise<RunningAgent> {
  const layout = cfg.layout;
  configureKillPoints(layout.mode);
  // Forward mode: the listening port is ours from here on (see holdPort), freed just before the
  // server listens on it.
  const release = cfg.connect.length === 0 && cfg.port > 0 ? await holdPort(cfg.host, cfg.port) : null;
  try {
    return await startHolding(cfg, logger, releaseLock, release);
  } finally {
    await release?.();
  }
}

async function startHolding(
  cfg: AgentConfig,
  logger: Logger,
  releaseLock: () => Promise<void>,
  releasePort: (() => Promise<void>) | null,
): Promise<RunningAgent> {
  const layout = cfg.layout;
  if (layout.mode === 'sandbox') {
    for (const d of [layout.configDir, layout.wwwRoot, layout.runDir, layout.logDir])
      await fsp.mkdir(d, { recursive: true });
  }
  const journal = new Journal(layout.stateDir);
  const unfinished = await journal.open();
  // A certificate install a kill interrupted is completed first: the key and the certificate
  // must be a pair before they are read.
  const trustFiles = {
    certFile: cfg.certFile,
    keyFile: cfg.keyFile,
    caFile: cfg.caFile,
    pendingKeyFile: path.join(layout.stateDir, 'renewal.key'),
  };
  await settleInstalls(trustFiles, unfinished);
  const tls = readTlsFiles(cfg);
  const revocations = new RevocationList(cfg.revokedFile);
  // The agent's health, reported to the panel over the link (`agent metrics`): one entry a part.
  const readiness = new Readiness()
    .add('state dir', () => fsp.access(layout.stateDir, fsConstants.W_OK).then(() => true))
    .add('certificate', async () => certificateValid(await fsp.readFile(cfg.certFile, 'utf8')));
  const metrics = new AgentMetrics(readiness);
  const router = new Router(logger, 1, metrics.router, journal);
  // Filled in below once the modules are known; links are only served after that.
  let hello: () => Hello = () => {
    throw new Error('the agent is still starting');
  };
  const links = new AgentLinks({
    tls,
    revoked: () => revocations.get(),
    router,
    hello: () => hello(),
    logger,
  });
  const ctx: ModuleContext = {
    layout,
    exec,
    logger,
    broadcast: (topic, data) => links.broadcast(topic, data),
    agentPort: cfg.port,
    moduleSettings: Object.fromEntries(Object.entries(cfg.modules).filter(([, v]) => v !== false)),
    backupSources: () => mergeBackupSources(ready),
    siteOwners: siteOwnerEvents(),
    selfCall: async (event, params) => {
      const r = await router.dispatch(
        event,
        { ...params, requestId: randomUUID() },
        { peer: { address: '127.0.0.1', port: 0, localPort: 0 }, emit: (t, d) => links.broadcast(t, d) },
      );
      return r.ok ? { ok: true } : { ok: false, error: { message: r.error.message } };
    },
  };
  // `"modules": { "mysql": false }` turns a domain off on this host (never 'system').
  const disabled = new Set(
    Object.entries(cfg.modules)
      .filter(([name, v]) => v === false && name !== 'system')
      .map(([name]) => name),
  );
  const trust = createTrustHandlers({
    files: trustFiles,
    links,
    revocations,
    logger,
  });
  const statuses: ModuleStatus[] = [];
  /** Each started module's service state, read at every hello (supervised sandbox services). */
  const serviceOf = new Map<string, () => ServiceStatus | undefined>();
  const started: AnyAgentModule[] = [];
  /** Modules in the order they were added, and whether each is available (routes added at the end). */
  const added: { mod: AnyAgentModule; a: ModuleAvailability }[] = [];
  /** The available modules (their backup sources; read by the backups module at call time). */
  const ready: AnyAgentModule[] = [];
  const add = async (mod: AnyAgentModule, known?: ModuleAvailability): Promise<void> => {
    let a = known ?? mod.availability();
    if (a.available && mod.start) {
      try {
        await mod.start();
        started.push(mod);
      } catch (e) {
        logger.error({ module: mod.name, err: (e as Error).message }, 'module failed to start');
        a = { available: false, reason: `${mod.name} failed to start: ${(e as Error).message}` };
      }
    }
    statuses.push(
      a.available
        ? { name: mod.name, available: true }
        : { name: mod.name, available: false, reason: a.reason ?? 'not available' },
    );
    added.push({ mod, a });
    if (a.available) ready.push(mod);
    if (a.available && mod.service) serviceOf.set(mod.name, () => mod.service?.());
  };

  const stopStarted = async (): Promise<void> => {
    for (const mod of started.reverse()) await mod.stop?.().catch(() => undefined);
  };

  try {
    await add(createSystemModule(ctx, trust, metrics, (id) => router.outcome(id)));
    for (const m of OPTIONAL_MODULES) {
      const absent = disabled.has(m.name)
        ? {
            available: false,
            reason: `${m.name} is turned off in the agent configuration (modules.${m.name} = false)`,
          }
        : m.probe(ctx);
      if (absent) {
        await add(absentModule(m.name, absent), absent);
        continue;
      }
      const create = await m.load();
      await add(create({ ...ctx, logger: logger.child({ module: m.name }) }));
    }
    // A module's steps before another's events (the backups module's trash snapshot before a
    // delete) are composed into that module's handlers; then every module's events are routed.
    for (const { mod, a } of composeBefore(added, ready))
      router.addModule(a.available ? mod : { ...mod, availability: () => a });
    // Crash safety (agent/journal): no temp file of a killed write is left, and every change a
    // killed agent was making is completed or undone before any new call is served.
    const swept = await sweepTempFiles([
      layout.stateDir,
      journal.dir,
      ...ready.flatMap((m) => m.writesIn?.() ?? []),
    ]);
    if (swept.length > 0) logger.warn({ files: swept }, 'removed temp files of interrupted writes');
    if (unfinished.length > 0) logger.warn({ calls: unfinished.length }, 'settling interrupted changes');
    await router.recover(unfinished);
  } catch (e) {
    await stopStarted();
    throw e;
  }

  hello = (): Hello => ({
    protocolVersion: PROTOCOL_VERSION,
    agentVersion: PONIO_VERSION,
    hostname: os.hostname(),
    mode: layout.mode,
    features: [...AGENT_FEATURES],
    modules: statuses.map((st) => {
      const service = serviceOf.get(st.name)?.();
      return service ? { ...st, service } : st;
    }),
  });

  // Forward mode: listen for the panel. Reverse mode (`connect`): dial it, no listening port.
  let transport: { port: number; server: AgentServer | null; dialOut: DialOut | null };
  try {
    if (cfg.connect.length > 0) {
      const { startDialOut } = await import('./dialer.ts');
      transport = { port: 0, server: null, dialOut: startDialOut({ urls: cfg.connect, links, logger }) };
    } else {
      await releasePort?.();
      const server = await startAgentServer({ host: cfg.host, port: cfg.port, links, logger });
      transport = { port: server.port, server, dialOut: null };
    }
  } catch (e) {
    await stopStarted();
    throw e;
  }
  const { port, server, dialOut } = transport;
  ctx.agentPort = port;
  logger.info(
    { ...(dialOut ? { connect: cfg.connect } : { port }), mode: layout.mode, modules: statuses },
    'agent ready',
  );
  // A service that died, was restarted or given up changes the hello: connected panels get it again.
  let lastServices = JSON.stringify(hello().modules);
  const serviceWatch = setInterval(() => {
    const now = JSON.stringify(hello().modules);
    if (now === lastServices) return;
    lastServices = now;
    links.resendHello();
  }, 1_000);
  serviceWatch.unref();

  return {
    port,
    server,
    dialOut,
    links,
    logger,
    revocations,
    async stop() {
      clearInterval(serviceWatch);
      dialOut?.stop(); // a clean close: the panel marks the host offline at once
      await server?.close();
      for (const mod of started.reverse()) {
        try {
          await mod.stop?.();
        } catch (e) {
          logger.error({ module: mod.name, err: (e as Error).message }, 'module failed to stop');
        }
      }
      await releaseLock();
    },
  };
}
