import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isEventName } from '../../shared/protocol/index.ts';
import { ERROR_CODES } from '../../shared/protocol/errors.ts';
import { PONIO_VERSION } from '../../shared/protocol/version.ts';

/** Seconds: RPC round trips are milliseconds; a slow reload or a big MariaDB grant takes seconds. */
export const RPC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Seconds: a job fans out over many hosts. */
export const JOB_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600];

/** How a run of a job ended (jobs record it with {@link JobMetrics}). */
export type JobOutcome = 'succeeded' | 'partial' | 'failed' | 'cancelled' | 'interrupted';

/**
 * A finished job's outcome from its state and host counts: `done` with no failed, unreachable or
 * timed-out host is `succeeded`, with some `partial`; `stopped` (threshold, not started, internal
 * error) is `failed`; a job the panel stopped running without an end is `interrupted`.
 */
export function jobOutcome(
  state: string | undefined,
  c: { failed: number; unreachable: number; timeout: number },
): JobOutcome {
  if (state === 'done') return c.failed + c.unreachable + c.timeout === 0 ? 'succeeded' : 'partial';
  if (state === 'stopped') return 'failed';
  if (state === 'cancelled') return 'cancelled';
  return 'interrupted';
}

/** What the jobs engine records: one `started` per run of a job, and its returned `finish` once. */
export interface JobMetrics {
  /** `kind` must come from a fixed set (e.g. the RPC event the job runs): it is a label. */
  started(kind: string): (outcome: JobOutcome) => void;
}

/** A call's outcome as a label: 'ok' or one of the protocol's error codes (a fixed set). */
export const outcomeLabel = (reply: { ok: true } | { ok: false; error: { code: string } }): string =>
  reply.ok
    ? 'ok'
    : (ERROR_CODES as readonly string[]).includes(reply.error.code)
      ? reply.error.code
      : 'other';

/** An event name as a label: only the contract's names, anything else is 'other'. */
export const eventLabel = (event: unknown): string => (isEventName(event) ? event : 'other');

/**
 * The panel's Prometheus metrics, in a registry of its own (no prom-client global). Labels are
 * bounded: host ids (enrolled hosts), event names and error codes of the contract, fixed words;
 * never a domain, user or database name.
 */
export class PanelMetrics {
  readonly registry = new Registry();

  /**
   * The enrolled hosts' ids: their per-host counters start at 0 at every scrape, so the first
   * disconnect or renewal failure of a host is an increase Prometheus sees (alerts use increase()).
   */
  knownHosts: () => readonly string[] = () => [];

  readonly rpcCalls = new Counter({
    name: 'ponio_rpc_calls_total',
    help: 'RPC calls from the dashboard, the API and the CLI to agents, by event and outcome (ok or the error code).',
    labelNames: ['event', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly rpcDuration = new Histogram({
    name: 'ponio_rpc_call_duration_seconds',
    help: 'Duration of RPC calls to agents as the panel sees it (round trip and agent work).',
    labelNames: ['event', 'outcome'] as const,
    buckets: RPC_BUCKETS,
    registers: [this.registry],
  });
  readonly rpcInFlight = new Gauge({
    name: 'ponio_rpc_calls_in_flight',
    help: 'RPC calls sent to a host and not answered yet.',
    labelNames: ['host'] as const,
    registers: [this.registry],
  });
  readonly linkConnects = new Counter({
    name: 'ponio_link_connects_total',
    help: 'Times the link to a host came up (agent hello accepted).',
    labelNames: ['host'] as const,
    registers: [this.registry],
    collect: this.zeroForHosts(),
  });
  readonly linkDisconnects = new Counter({
    name: 'ponio_link_disconnects_total',
    help: 'Times an established link to a host went down.',
    labelNames: ['host'] as const,
    registers: [this.registry],
    collect: this.zeroForHosts(),
  });
  readonly renewalFailures = new Counter({
    name: 'ponio_certificate_renewal_failures_total',
    help: 'Failed host certificate renewals (scheduled or asked for).',
    labelNames: ['host'] as const,
    registers: [this.registry],
    collect: this.zeroForHosts(),
  });
  readonly renewals = new Counter({
    name: 'ponio_certificate_renewals_total',
    help: 'Host certificate renewals by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly loginFailures = new Counter({
    name: 'ponio_login_failures_total',
    help: 'Failed dashboard sign-ins (wrong username or password, disabled account).',
    registers: [this.registry],
  });
  readonly rateLimitHits = new Counter({
    name: 'ponio_rate_limit_hits_total',
    help: 'Requests refused by a rate limit (429), by limiter.',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });
  readonly jobsTotal = new Counter({
    name: 'ponio_jobs_total',
    help: 'Finished jobs by kind and outcome.',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: 'ponio_job_duration_seconds',
    help: 'Duration of finished jobs by kind and outcome.',
    labelNames: ['kind', 'outcome'] as const,
    buckets: JOB_BUCKETS,
    registers: [this.registry],
  });
  readonly jobsRunning = new Gauge({
    name: 'ponio_jobs_running',
    help: 'Jobs running now, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  private zeroForHosts(): (this: Counter<'host'>) => void {
    const hosts = (): readonly string[] => this.knownHosts();
    return function (this: Counter<'host'>) {
      for (const host of hosts()) this.inc({ host }, 0);
    };
  }

  /** The API the jobs engine records with (server/jobs/). */
  readonly jobs: JobMetrics = {
    started: (kind) => {
      const t0 = performance.now();
      this.jobsRunning.inc({ kind });
      let done = false;
      return (outcome) => {
        if (done) return;
        done = true;
        this.jobsRunning.dec({ kind });
        this.jobsTotal.inc({ kind, outcome });
        this.jobDuration.observe({ kind, outcome }, (performance.now() - t0) / 1000);
      };
    },
  };

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'ponio_panel_info',
      help: 'The running panel version (always 1).',
      labelNames: ['version'] as const,
      registers: [this.registry],
    }).set({ version: PONIO_VERSION }, 1);
  }

  /** Adds a gauge whose values are read at every scrape (hosts, certificates, readiness). */
  gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () =>
      | Iterable<[Partial<Record<L, string>>, number]>
      | Promise<Iterable<[Partial<Record<L, string>>, number]>>,
  ): void {
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [labels, v] of await read()) this.set(labels, v);
      },
    });
  }
}
