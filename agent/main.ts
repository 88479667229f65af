import os from 'node:os';
import { promises as fsp } from 'node:fs';
import { pino, type Logger } from 'pino';
import { PROTOCOL_VERSION, PONIO_VERSION, type Hello, type ModuleStatus } from '../shared/protocol/index.ts';
import { readTlsFiles, type AgentConfig } from './config.ts';
import { exec } from './os/exec.ts';
import { Router } from './rpc/router.ts';
import { startAgentServer, type AgentServer } from './server.ts';
import { RevocationList } from './trust.ts';
import { createTrustHandlers } from './trust-handlers.ts';
import type { AnyAgentModule, ModuleContext } from './modules/types.ts';
import { createSystemModule } from './modules/system/index.ts';
import { createWebsitesModule } from './modules/websites/index.ts';
import { createFtpModule } from './modules/ftp/index.ts';
import { createMysqlModule } from './modules/mysql/index.ts';
import { createFirewallModule } from './modules/firewall/index.ts';

export interface RunningAgent {
  port: number;
  server: AgentServer;
  logger: Logger;
  revocations: RevocationList;
  stop(): Promise<void>;
}

/** Creates and wires the agent's parts. No work happens at import time. */
export async function startAgent(
  cfg: AgentConfig,
  logger: Logger = pino({ level: cfg.logLevel }),
): Promise<RunningAgent> {
  const tls = readTlsFiles(cfg);
  const layout = cfg.layout;
  await fsp.mkdir(layout.stateDir, { recursive: true, mode: 0o700 });
  if (layout.mode === 'sandbox') {
    for (const d of [layout.configDir, layout.wwwRoot, layout.runDir, layout.logDir])
      await fsp.mkdir(d, { recursive: true });
  }
  const revocations = new RevocationList(cfg.revokedFile);
  const router = new Router(logger);
  let server: AgentServer | null = null;
  const ctx: ModuleContext = {
    layout,
    exec,
    logger,
    broadcast: (topic, data) => server?.broadcast(topic, data),
    agentPort: cfg.port,
    moduleSettings: Object.fromEntries(Object.entries(cfg.modules).filter(([, v]) => v !== false)),
  };
  // `"modules": { "mysql": false }` turns a domain off on this host (never 'system').
  const disabled = new Set(
    Object.entries(cfg.modules)
      .filter(([name, v]) => v === false && name !== 'system')
      .map(([name]) => name),
  );
  const trust = createTrustHandlers({
    files: { certFile: cfg.certFile, keyFile: cfg.keyFile, caFile: cfg.caFile },
    tls,
    server: () => server,
    revocations,
    logger,
  });
  const modules: AnyAgentModule[] = [
    createSystemModule(ctx, trust),
    createWebsitesModule({ ...ctx, logger: logger.child({ module: 'websites' }) }),
    createFtpModule({ ...ctx, logger: logger.child({ module: 'ftp' }) }),
    createMysqlModule({ ...ctx, logger: logger.child({ module: 'mysql' }) }),
    createFirewallModule({ ...ctx, logger: logger.child({ module: 'firewall' }) }),
  ];

  const statuses: ModuleStatus[] = [];
  const started: AnyAgentModule[] = [];
  for (const mod of modules) {
    let a = disabled.has(mod.name)
      ? {
          available: false,
          reason: `${mod.name} is turned off in the agent configuration (modules.${mod.name} = false)`,
        }
      : mod.availability();
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
    if (a.available) router.addModule(mod);
    else router.addModule({ ...mod, availability: () => a });
  }

  const hello = (): Hello => ({
    protocolVersion: PROTOCOL_VERSION,
    agentVersion: PONIO_VERSION,
    hostname: os.hostname(),
    mode: layout.mode,
    modules: statuses,
  });

  try {
    server = await startAgentServer({
      host: cfg.host,
      port: cfg.port,
      tls,
      revoked: () => revocations.get(),
      router,
      hello,
      logger,
    });
  } catch (e) {
    for (const mod of started.reverse()) await mod.stop?.().catch(() => undefined);
    throw e;
  }
  const srv = server;
  ctx.agentPort = srv.port;
  logger.info({ port: srv.port, mode: layout.mode, modules: statuses }, 'agent ready');

  return {
    port: srv.port,
    server: srv,
    logger,
    revocations,
    async stop() {
      await srv.close();
      for (const mod of started.reverse()) {
        try {
          await mod.stop?.();
        } catch (e) {
          logger.error({ module: mod.name, err: (e as Error).message }, 'module failed to stop');
        }
      }
    },
  };
}
