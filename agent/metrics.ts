import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReplyData } from '../shared/protocol/index.ts';
import type { Readiness } from '../shared/health.ts';
import type { RouterObserver } from './rpc/router.ts';

/** Seconds a mutation waits for its module's lock: from nothing to a stuck reload. */
const LOCK_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.25, 1, 2.5, 5, 10, 30, 60];

type AgentMetricsReply = ReplyData<'agent metrics'>;

/**
 * The agent's own metrics, in a registry of its own. They travel to the panel over the existing
 * link (the `agent metrics` event; no port of their own), which serves them on its /metrics with
 * a `host` label. Every name starts with ponio_agent_; labels are module and event names only.
 */
export class AgentMetrics {
  private readonly registry = new Registry();
  private readonly lockWait = new Histogram({
    name: 'ponio_agent_lock_wait_seconds',
    help: "Time a mutation waited for its module's lock on the agent.",
    labelNames: ['module'] as const,
    buckets: LOCK_BUCKETS,
    registers: [this.registry],
  });
  private readonly inFlight = new Gauge({
    name: 'ponio_agent_calls_in_flight',
    help: 'RPC calls the agent is working on (waiting for a lock included).',
    registers: [this.registry],
  });
  private readonly calls = new Counter({
    name: 'ponio_agent_calls_total',
    help: 'RPC calls the agent answered, by module and outcome (ok or the error code).',
    labelNames: ['module', 'outcome'] as const,
    registers: [this.registry],
  });

  /** The router's hooks (agent/rpc/router.ts). */
  readonly router: RouterObserver = {
    lockWait: (module, seconds) => this.lockWait.observe({ module }, seconds),
    callStarted: () => this.inFlight.inc(),
    callFinished: (module, outcome) => {
      this.inFlight.dec();
      this.calls.inc({ module, outcome });
    },
  };

  constructor(private readonly readiness: Readiness) {
    const startedAt = Date.now() / 1000;
    new Gauge({
      name: 'ponio_agent_start_time_seconds',
      help: 'When the agent process started (Unix time).',
      registers: [this.registry],
    }).set(startedAt);
    new Gauge({
      name: 'ponio_agent_resident_memory_bytes',
      help: "The agent process's resident memory.",
      registers: [this.registry],
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Counter({
      name: 'ponio_agent_cpu_seconds_total',
      help: 'CPU time (user + system) the agent process used.',
      registers: [this.registry],
      collect() {
        const u = process.cpuUsage();
        this.reset();
        this.inc((u.user + u.system) / 1e6);
      },
    });
    new Gauge({
      name: 'ponio_agent_ready',
      help: 'Whether all of the agent readiness probes pass (1) or not (0).',
      registers: [this.registry],
    });
  }

  /** The `agent metrics` reply: health and every metric family. */
  async snapshot(): Promise<AgentMetricsReply> {
    const health = await this.readiness.run();
    (this.registry.getSingleMetric('ponio_agent_ready') as Gauge | undefined)?.set(health.ready ? 1 : 0);
    const families = await this.registry.getMetricsAsJSON();
    return {
      health,
      metrics: families.map((f) => ({
        name: f.name,
        help: f.help,
        // prom-client's types call it an enum; at run time it is the family's type word.
        type: String(f.type) as AgentMetricsReply['metrics'][number]['type'],
        aggregator: f.aggregator,
        values: f.values.map((v: { value: number; labels: object; metricName?: string }) => ({
          value: v.value,
          labels: v.labels as Record<string, string | number>,
          ...(v.metricName === undefined ? {} : { metricName: v.metricName }),
        })),
      })),
    };
  }
}
