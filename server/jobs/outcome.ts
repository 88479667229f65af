import type { Reply } from '../../shared/protocol/index.ts';

/** The outcome of one host in a job. `timeout` means the outcome is unknown (the call may have acted). */
export const HOST_OUTCOMES = ['ok', 'failed', 'unreachable', 'timeout', 'skipped'] as const;
export type HostOutcome = (typeof HOST_OUTCOMES)[number];
export type HostState = 'pending' | 'running' | HostOutcome;

/** Why a host was skipped (job_hosts.error_code of a skipped host). */
export type SkipReason = 'threshold' | 'cancelled' | 'capability' | 'dry-run';

export const OUTCOME_LABELS: Record<HostState, string> = {
  pending: 'pending',
  running: 'running',
  ok: 'ok',
  failed: 'failed',
  unreachable: 'unreachable',
  timeout: 'timeout / outcome unknown',
  skipped: 'skipped',
};

/**
 * A reply's outcome: `unavailable` (offline at start or lost during the call) is unreachable;
 * `timeout`, or a reply that says its outcome is unknown, is timeout; any other error is failed.
 */
export function outcomeOf(reply: Reply<unknown>): HostOutcome {
  if (reply.ok) return 'ok';
  const e = reply.error as { code: string; outcome?: unknown; details?: { outcome?: unknown } };
  // A mutation whose link dropped mid-call says so in its details: it may have acted.
  if (e.outcome === 'unknown' || e.details?.outcome === 'unknown' || e.code === 'timeout') return 'timeout';
  if (e.code === 'unavailable') return 'unreachable';
  return 'failed';
}

export type Counts = Record<HostState, number>;

export const emptyCounts = (): Counts => ({
  pending: 0,
  running: 0,
  ok: 0,
  failed: 0,
  unreachable: 0,
  timeout: 0,
  skipped: 0,
});

/** The play-recap line: `20 hosts: ok=15 failed=2 unreachable=1 timeout=1 skipped=1`. */
export function recapLine(c: Counts): string {
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  const parts = [
    `ok=${c.ok}`,
    `failed=${c.failed}`,
    `unreachable=${c.unreachable}`,
    `timeout=${c.timeout}`,
    `skipped=${c.skipped}`,
  ];
  if (c.pending > 0) parts.push(`pending=${c.pending}`);
  if (c.running > 0) parts.push(`running=${c.running}`);
  return `${total} host${total === 1 ? '' : 's'}: ${parts.join(' ')}`;
}
