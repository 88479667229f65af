import { z } from 'zod';
import { HOST_OUTCOMES } from '../jobs/outcome.ts';
import { jobRequestSchema } from '../jobs/spec.ts';
import type { ApiRouteDoc } from './openapi-routes.ts';

const hostState = z.enum(['pending', 'running', ...HOST_OUTCOMES]);
const counts = z.object(Object.fromEntries(hostState.options.map((s) => [s, z.number().int()])));
const jobState = z.enum(['queued', 'running', 'done', 'stopped', 'cancelled', 'interrupted']);

const jobSchema = z.object({
  id: z.number().int(),
  event: z.string(),
  params: z.record(z.string(), z.unknown()).describe('as given, secrets redacted'),
  target: jobRequestSchema.shape.target,
  window: z.string().describe('"10" or "10%"'),
  pauseSeconds: z.number(),
  failThreshold: z.string().nullable(),
  deadlineSeconds: z.number().nullable(),
  dryRun: z.boolean(),
  state: jobState,
  cancelRequested: z.boolean(),
  createdAt: z.number(),
  createdBy: z.string(),
  actor: z.string().describe('who started the current run (creator, or who retried or resumed it)'),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  runner: z.string().nullable().describe('the panel process running it (one per job, by an atomic claim)'),
  message: z.string().nullable(),
  counts,
  recap: z.string().describe('"20 hosts: ok=15 failed=2 unreachable=1 timeout=1 skipped=1"'),
});

const hostResult = z.object({
  seq: z.number().int(),
  hostId: z.string(),
  hostName: z.string(),
  state: hostState.describe('timeout means the outcome is unknown'),
  attempts: z.number().int(),
  errorCode: z
    .string()
    .nullable()
    .describe('the error code; for skipped hosts: threshold, cancelled, capability or dry-run'),
  message: z.string().nullable(),
  data: z.unknown().describe("the event's reply data (ok hosts)"),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  durationMs: z.number().nullable(),
});

const previewHost = z.object({
  id: z.string(),
  name: z.string(),
  labels: z.record(z.string(), z.string()),
  state: z.string().nullable(),
  capable: z.boolean().nullable(),
  reason: z.string().nullable(),
});

const jobAction = (action: 'cancel' | 'retry' | 'resume', summary: string): ApiRouteDoc => ({
  method: 'post',
  path: `/jobs/{id}/${action}`,
  summary: `${summary} (needs the role of the job's event)`,
  tag: 'jobs',
  role: 'viewer',
  access: 'scoped-list',
  status: action === 'cancel' ? 200 : 202,
  data: jobSchema,
});

/** The jobs routes (server/api/jobs.ts) for the OpenAPI document. */
export const JOB_ROUTES: ApiRouteDoc[] = [
  {
    method: 'post',
    path: '/jobs',
    summary:
      'Start a job: one event on many hosts in a sliding window (needs the role of the event: viewer for reads, operator for mutations)',
    tag: 'jobs',
    role: 'viewer',
    access: 'scoped-list',
    status: 202,
    body: jobRequestSchema,
    data: jobSchema,
  },
  {
    method: 'post',
    path: '/jobs/preview',
    summary: 'Which hosts a target names, with their state and whether they offer the event’s module',
    tag: 'jobs',
    role: 'viewer',
    access: 'scoped-list',
    body: z.object({ target: jobRequestSchema.shape.target, event: z.string().optional() }),
    data: z.object({
      count: z.number().int(),
      summary: z.string(),
      hosts: z.array(previewHost),
      outOfScope: z.number().int().describe('hosts the target matched outside your scope, left out'),
    }),
  },
  {
    method: 'get',
    path: '/jobs',
    summary: 'Jobs, newest first',
    tag: 'jobs',
    role: 'viewer',
    access: 'scoped-list',
    query: [
      {
        name: 'state',
        description: 'queued, running, done, stopped, cancelled or interrupted',
        schema: z.string(),
      },
      { name: 'limit', description: '1–500 (default 50)', schema: z.string() },
      { name: 'offset', description: 'jobs to skip', schema: z.string() },
    ],
    data: z.array(jobSchema),
    extra: { total: z.number().int().describe('jobs matching the filter, for paging') },
  },
  {
    method: 'get',
    path: '/jobs/{id}',
    summary: 'One job with its per-host results',
    tag: 'jobs',
    role: 'viewer',
    access: 'scoped-list',
    query: [{ name: 'hostState', description: 'only hosts in this state, e.g. failed', schema: z.string() }],
    data: jobSchema.extend({ hosts: z.array(hostResult) }),
  },
  jobAction('cancel', 'Cancel a job: no new host starts; calls in flight finish and are recorded'),
  jobAction('retry', 'Run again the hosts that failed, were unreachable or timed out'),
  jobAction('resume', 'Run the hosts an interrupted, stopped or cancelled job never started'),
  {
    method: 'get',
    path: '/hosts/{hostId}/labels',
    summary: "A host's labels",
    tag: 'hosts',
    role: 'viewer',
    data: z.record(z.string(), z.string()),
  },
  {
    method: 'put',
    path: '/hosts/{hostId}/labels',
    summary:
      "Replace a host's labels (an operator on all hosts: labels decide who sees a host, docs/security.md)",
    tag: 'hosts',
    role: 'operator',
    body: z.object({
      labels: z
        .union([z.record(z.string(), z.string()), z.string()])
        .describe('{ "role": "web" } or "role=web, dc=ams"'),
    }),
    data: z.record(z.string(), z.string()),
  },
];
