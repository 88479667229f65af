import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { parseHostPort, type PanelConfig } from './config.ts';
import type { PanelContext } from './context.ts';
import { openDatabase } from './db/database.ts';
import { AuditLog } from './db/audit.ts';
import { HostsRepo } from './db/hosts.ts';
import { PanelEvents } from './events.ts';
import { ConnectionManager } from './hosts/connection-manager.ts';
import { startAgentListener, type AgentListener } from './hosts/agent-listener.ts';
import { PanelPki } from './hosts/pki-store.ts';
import { HostRegistry } from './hosts/registry.ts';
import { OutcomeResolver } from './hosts/outcomes.ts';
import { HostActions } from './http/host-actions.ts';
import { ApiTokens } from './auth/api-tokens.ts';
import { Accounts } from './auth/accounts.ts';
import { createApp } from './http/app.ts';
import { createHostLifecycle } from './hosts/enrollment.ts';
import { revokedHostSerials } from './hosts/revocation.ts';
import { HostCrl } from './hosts/host-crl.ts';
import { attachRealtime } from './realtime/index.ts';
import { HostLabelsRepo } from './db/labels.ts';
import { HostScopes } from './auth/host-scope.ts';
import { TwoFactor } from './auth/two-factor.ts';
import { TwoFactorRepo } from './db/two-factor.ts';
import { SecretBox } from './auth/secret-box.ts';
import { panelSecret } from './auth/panel-secret.ts';
import { Jobs } from './jobs/engine.ts';
import { createObservability } from './metrics/index.ts';

export interface RunningPanel {
  ctx: PanelContext;
  server: https.Server;
  port: number;
  /** Where reverse-mode agents dial in (null: `agentListen` is off). */
  agentListener: AgentListener | null;
  url: string;
  close(): Promise<void>;
}

/** Builds and wires the panel, listens, connects to enrolled hosts. */
export async function startPanel(
  config: PanelConfig,
  logger: Logger = pino({ level: config.logLevel }),
): Promise<RunningPanel> {
  const db = openDatabase(path.join(config.dataDir, 'panel.db'));
  const names = { dns: ['localhost'], ips: ['127.0.0.1', '::1'] };
  for (const n of config.serverNames) (isIP(n) ? names.ips : names.dns).push(n);
  // Agents enroll against publicUrl and check the HTTPS certificate's name (docs/security.md).
  const publicHost = config.publicUrl ? new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, '') : '';
  if (publicHost) (isIP(publicHost) ? names.ips : names.dns).push(publicHost);
  if (config.host !== '0.0.0.0' && config.host !== '::')
    (isIP(config.host) ? names.ips : names.dns).push(config.host);
  const pki = await PanelPki.load(config.dataDir, db, {
    dns: [...new Set(names.dns)],
    ips: [...new Set(names.ips)],
  });
  const events = new PanelEvents();
  const manager = new ConnectionManager({
    tls: () => pki.clientTls(),
    revoked: () => revokedHostSerials(db),
    logger: logger.child({ part: 'hosts' }),
  });
  const hosts = new HostRegistry(new HostsRepo(db), manager, events);
  const audit = new AuditLog(db);
  // Readiness probes: one entry per part (e.g. observability.readiness.add('redis', () => …)).
  const observability = createObservability({
    db,
    hosts,
    events,
    audit,
    logger,
    metricsToken: config.metricsToken,
  });
  const labels = new HostLabelsRepo(db);
  const accounts = new Accounts(db);
  const apiTokens = new ApiTokens(db);
  const scopes = new HostScopes({
    grants: accounts.grants,
    tokens: apiTokens,
    users: accounts.users,
    labels,
    hosts: hosts.repo,
  });
  const actions = new HostActions(hosts, audit, events, observability.calls, scopes);
  const jobs = new Jobs({
    db,
    hosts,
    labels,
    actions,
    audit,
    events,
    logger: logger.child({ part: 'jobs' }),
    leaseMs: config.jobLeaseSeconds * 1000,
    metrics: observability.metrics.jobs,
    scopes,
  });
  let port = config.port;
  const ctx: PanelContext = {
    config,
    logger,
    db,
    audit,
    events,
    pki,
    hosts,
    actions,
    labels,
    jobs,
    apiTokens,
    accounts,
    scopes,
    twoFactor: new TwoFactor(
      new TwoFactorRepo(db),
      SecretBox.load(config.dataDir),
      panelSecret(db, 'recovery-codes'),
    ),
    observability,
    publicUrl: () =>
      config.publicUrl ?? `https://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
  };
  let agentListener: AgentListener | null = null;
  // Revoked host certificates, refused by the agent listener's TLS layer (host-crl.ts).
  const hostCrl = new HostCrl({
    ca: () => pki.ca,
    revoked: () => revokedHostSerials(db),
    logger: logger.child({ part: 'agent-listener' }),
  });
  const lifecycle = createHostLifecycle({
    config,
    db,
    pki,
    hosts,
    audit,
    events,
    logger,
    publicUrl: () => ctx.publicUrl(),
    agentUrl: () =>
      agentListener
        ? (config.agentPublicUrl ?? `wss://${new URL(ctx.publicUrl()).hostname}:${agentListener.port}`)
        : null,
    onRevoked: () => {
      hostCrl.refresh().catch((e: unknown) => logger.error({ err: (e as Error).message }, 'CRL not signed'));
    },
  });
  ctx.enrollment = lifecycle.enrollment;
  const tls =
    config.tlsCert && config.tlsKey
      ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) }
      : { cert: pki.serverTls().certPem, key: pki.serverTls().keyPem };
  const app = createApp(ctx);
  // SNI: an enrolling agent gets the panel's own certificate, browsers the HTTPS one (pki-store.ts).
  const server = https.createServer({ ...tls, minVersion: 'TLSv1.2', SNICallback: pki.sniCallback() }, app);
  const realtime = attachRealtime(ctx, server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const listen = parseHostPort(config.agentListen);
  if (listen) {
    observability.readiness.add('agent listener', () => agentListener?.listening() === true);
    try {
      await hostCrl.refresh();
      hostCrl.start();
      agentListener = await startAgentListener({
        ...listen,
        tls: () => pki.clientTls(),
        revoked: () => revokedHostSerials(db),
        crl: () => hostCrl.current(),
        manager,
        logger: logger.child({ part: 'agent-listener' }),
      });
    } catch (e) {
      hostCrl.stop();
      await realtime.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      db.close();
      throw Object.assign(e as Error, { listen: config.agentListen });
    }
  }
  hosts.connectAll();
  lifecycle.start();
  jobs.start();
  // Mutations that timed out with an unknown outcome: asked again until the host tells.
  const outcomes = new OutcomeResolver(manager, audit, events, logger.child({ part: 'outcomes' }));
  outcomes.start();
  const url = ctx.publicUrl();
  logger.info({ url }, 'panel ready');
  return {
    ctx,
    server,
    port,
    agentListener,
    url,
    async close() {
      lifecycle.stop();
      hostCrl.stop();
      outcomes.stop();
      await jobs.close();
      await realtime.close();
      await agentListener?.close();
      await manager.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      db.close();
    },
  };
}
