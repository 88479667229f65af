import type { RequestHandler, Router } from 'express';
import { Gauge, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { Readiness, type ReadinessReport } from '../../shared/health.ts';
import type { Db } from '../db/database.ts';
import type { AuditLog } from '../db/audit.ts';
import type { PanelEvents } from '../events.ts';
import type { HostRegistry } from '../hosts/registry.ts';
import type { HostState } from '../hosts/connection-manager.ts';
import { PanelMetrics } from './panel-metrics.ts';
import { callObserver, type CallObserver } from './calls.ts';
import { agentRegistry, scrapeAgents } from './agents.ts';
import { databaseWritable, migrationsDone } from './probes.ts';
import { observabilityRouter } from './http.ts';

export { PanelMetrics, type JobMetrics, type JobOutcome } from './panel-metrics.ts';
export type { CallObserver } from './calls.ts';

export interface ObservabilityDeps {
  db: Db;
  hosts: HostRegistry;
  events: PanelEvents;
  audit: AuditLog;
  logger: Logger;
  /** Bearer token for /metrics (config.metricsToken); undefined turns /metrics off. */
  metricsToken: string | undefined;
}

export interface Observability {
  metrics: PanelMetrics;
  /**
   * The panel's readiness probes (GET /readyz): 'database' and 'migrations' here; other parts
   * add theirs in server/main.ts (`readiness.add('agent listener', …)`, `readiness.add('redis', …)`).
   */
  readiness: Readiness;
  /** For HostActions: counts, times and logs every host call with its id. */
  calls: CallObserver;
  /** /healthz, /readyz, /metrics. */
  router(): Router;
  /** Counts 429 answers of the rate limiters (mounted before every route). */
  rateLimitCounter: RequestHandler;
}

/** Seconds the panel waits for each agent's metrics during a scrape. */
const AGENT_SCRAPE_TIMEOUT_MS = 3_000;
/** GET /readyz runs the probes at most this often. */
const READY_CACHE_MS = 1_000;

/** Which limiter answered 429, from the path (a fixed word: a label). */
export const limiterOf = (path: string): string =>
  path.startsWith('/login') || path.startsWith('/setup')
    ? 'login'
    : path.startsWith('/enroll')
      ? 'enroll'
      : path.startsWith('/agent/')
        ? 'agent-download'
        : path.startsWith('/api/')
          ? 'api'
          : 'other';

/** Builds the panel's metrics, readiness probes, call observer and routes (wired by main.ts). */
export function createObservability(d: ObservabilityDeps): Observability {
  const metrics = new PanelMetrics();
  metrics.knownHosts = () =>
    d.hosts.repo
      .list()
      .filter((h) => h.status === 'enrolled')
      .map((h) => h.id);
  const readiness = new Readiness()
    .add('database', () => databaseWritable(d.db))
    .add('migrations', () => migrationsDone(d.db));

  // Link connects and disconnects from the connection state changes.
  const last = new Map<string, HostState>();
  d.events.on('hostState', (s) => {
    const before = last.get(s.id);
    if (s.state === 'online' && before !== 'online') metrics.linkConnects.inc({ host: s.id });
    if (before === 'online' && s.state !== 'online') metrics.linkDisconnects.inc({ host: s.id });
    last.set(s.id, s.state);
  });
  d.events.on('hostsChanged', () => {
    const known = new Set(d.hosts.repo.list().map((h) => h.id));
    for (const id of last.keys()) if (!known.has(id)) last.delete(id);
  });

  // Failures the audit log sees: sign-ins and certificate renewals.
  d.audit.observe((e) => {
    if (e.action === 'login' && !e.ok) metrics.loginFailures.inc();
    if (e.action === 'host certificate renew') {
      metrics.renewals.inc({ outcome: e.ok ? 'ok' : 'failed' });
      if (!e.ok && e.hostId) metrics.renewalFailures.inc({ host: e.hostId });
    }
  });

  metrics.gauge('ponio_hosts', 'Hosts by connection state and mode.', ['state', 'mode'], () => {
    const counts = new Map<string, number>();
    for (const h of d.hosts.list()) {
      const state = h.connection?.state ?? (h.status === 'enrolled' ? 'offline' : h.status);
      const key = `${state}\u0000${h.mode}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([k, n]) => {
      const [state = '', mode = ''] = k.split('\u0000');
      return [{ state, mode }, n];
    });
  });
  metrics.gauge(
    'ponio_host_online',
    'Whether the link to an enrolled host is up (1) or not (0).',
    ['host'],
    () =>
      d.hosts
        .list()
        .filter((h) => h.status === 'enrolled')
        .map((h) => [{ host: h.id }, h.connection?.state === 'online' ? 1 : 0]),
  );
  metrics.gauge(
    'ponio_host_certificate_expiry_timestamp_seconds',
    "When each host's current certificate expires (Unix time).",
    ['host'],
    () =>
      d.hosts.repo
        .list()
        .flatMap((h) =>
          h.cert_not_after === null ? [] : ([[{ host: h.id }, h.cert_not_after / 1000]] as const),
        ),
  );

  let cached: { at: number; report: Promise<ReadinessReport> } | null = null;
  const ready = (): Promise<ReadinessReport> => {
    const now = Date.now();
    if (!cached || now - cached.at >= READY_CACHE_MS) cached = { at: now, report: readiness.run() };
    return cached.report;
  };
  metrics.gauge(
    'ponio_readiness_check',
    'Each readiness probe of the panel: passes (1) or not (0).',
    ['check'],
    async () => (await ready()).checks.map((c) => [{ check: c.name }, c.ok ? 1 : 0]),
  );

  // Per scrape: the agents' own families (host label) and what the panel learnt about them.
  const registries = async (): Promise<Registry[]> => {
    const scrapes = await scrapeAgents(d.hosts.manager, AGENT_SCRAPE_TIMEOUT_MS);
    const learnt = new Registry();
    const agentUp = new Gauge({
      name: 'ponio_host_agent_scrape_ok',
      help: "Whether the host's agent answered `agent metrics` in this scrape (1) or not (0); online hosts only.",
      labelNames: ['host'] as const,
      registers: [learnt],
    });
    const agentReady = new Gauge({
      name: 'ponio_host_agent_ready',
      help: "Whether all of the agent's own readiness probes pass (1) or not (0), as it reported over the link.",
      labelNames: ['host'] as const,
      registers: [learnt],
    });
    for (const s of scrapes) {
      agentUp.set({ host: s.hostId }, s.report ? 1 : 0);
      if (s.report) agentReady.set({ host: s.hostId }, s.report.health.ready ? 1 : 0);
    }
    return [metrics.registry, learnt, agentRegistry(scrapes)];
  };

  return {
    metrics,
    readiness,
    calls: callObserver(metrics, d.logger.child({ part: 'calls' })),
    router: () =>
      observabilityRouter({ readiness: ready, registries, token: d.metricsToken, logger: d.logger }),
    rateLimitCounter: (req, res, next) => {
      res.on('finish', () => {
        if (res.statusCode === 429) metrics.rateLimitHits.inc({ limiter: limiterOf(req.originalUrl) });
      });
      next();
    },
  };
}
