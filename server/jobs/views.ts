import type { Actor } from '../db/audit.ts';
import { recapLine, type Counts } from './outcome.ts';
import type { JobHostRow, JobRow, JobsStore } from './store.ts';
import type { JobSettings, JobTarget } from './spec.ts';

const parse = (s: string | null): unknown => (s === null ? null : (JSON.parse(s) as unknown));

/** A job as the API, the CLI and the dashboard show it. */
export function jobJson(j: JobRow, counts: Counts) {
  const settings = JSON.parse(j.settings) as JobSettings;
  return {
    id: j.id,
    event: j.event,
    params: parse(j.params) as Record<string, unknown>,
    target: parse(j.target) as JobTarget,
    window: settings.window,
    pauseSeconds: settings.pauseMs / 1000,
    failThreshold: settings.failThreshold,
    deadlineSeconds: settings.deadlineMs === null ? null : settings.deadlineMs / 1000,
    dryRun: j.dry_run === 1,
    state: j.state,
    cancelRequested: j.cancel_requested === 1,
    createdAt: j.created_at,
    createdBy: j.created_by,
    actor: (JSON.parse(j.actor) as Actor).name,
    startedAt: j.started_at,
    finishedAt: j.finished_at,
    runner: j.runner,
    message: j.message,
    counts,
    recap: recapLine(counts),
  };
}
export type JobJson = ReturnType<typeof jobJson>;

export function hostResultJson(h: JobHostRow) {
  return {
    seq: h.seq,
    hostId: h.host_id,
    hostName: h.host_name,
    state: h.state,
    attempts: h.attempts,
    errorCode: h.error_code,
    message: h.message,
    data: parse(h.data),
    startedAt: h.started_at,
    finishedAt: h.finished_at,
    durationMs: h.started_at !== null && h.finished_at !== null ? h.finished_at - h.started_at : null,
  };
}
export type HostResultJson = ReturnType<typeof hostResultJson>;

export const jobWithHosts = (store: JobsStore, j: JobRow) => ({
  ...jobJson(j, store.counts(j.id)),
  hosts: store.hosts(j.id).map(hostResultJson),
});
