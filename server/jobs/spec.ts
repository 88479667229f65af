import { z } from 'zod';
import { EVENT_NAMES, moduleNameSchema, rpcEvents, type EventName } from '../../shared/protocol/index.ts';

/**
 * What a job is made of: an event of the contract with its parameters, a target, and batch
 * settings. One schema for the REST API, the dashboard form and the CLI (server/jobs/).
 */

/**
 * Events a job may run: every event of the contract except the panel's own trust pushes
 * (certificate renewal and revocation lists), which the panel runs itself (docs/security.md).
 */
export const JOB_EVENTS: readonly EventName[] = EVENT_NAMES.filter(
  (e) => !(rpcEvents[e].module === 'system' && rpcEvents[e].mutation),
);
export const isJobEvent = (e: unknown): e is EventName =>
  typeof e === 'string' && (JOB_EVENTS as readonly string[]).includes(e);

const hostRef = z.string().min(1).max(200);

/** Which hosts: all; a list (ids or names); a label selector; those offering a module; minus exclusions. */
export const targetSchema = z
  .strictObject({
    all: z.boolean().optional().describe('every enrolled host'),
    hosts: z.array(hostRef).max(10_000).optional().describe('host ids or names'),
    selector: z.string().max(1024).optional().describe('label selector, e.g. role=web,dc!=fra'),
    module: moduleNameSchema
      .optional()
      .describe('only hosts whose agent offers this module (from its hello)'),
    exclude: z.array(hostRef).max(10_000).optional().describe('host ids or names left out'),
  })
  .refine(
    (t) => t.all === true || t.hosts !== undefined || t.selector !== undefined || t.module !== undefined,
    {
      message: 'say which hosts: all, a list of hosts, a label selector or a module',
    },
  );
export type JobTarget = z.infer<typeof targetSchema>;

/** A count (`10`) or a share of the targeted hosts (`"10%"`). */
export type Amount = { kind: 'count'; n: number } | { kind: 'percent'; pct: number };

const amountInput = (min: number) =>
  z.union([
    z.number().int().min(min).max(100_000),
    z
      .string()
      .regex(/^\d{1,6}%?$/, 'must be a number of hosts (10) or a percentage (10%)')
      .refine((s) => (s.endsWith('%') ? Number(s.slice(0, -1)) <= 100 : true), 'a percentage is at most 100%')
      .refine((s) => Number(s.replace('%', '')) >= min, `must be at least ${min}`),
  ]);

export const parseAmount = (v: number | string): Amount =>
  typeof v === 'number'
    ? { kind: 'count', n: v }
    : v.endsWith('%')
      ? { kind: 'percent', pct: Number(v.slice(0, -1)) }
      : { kind: 'count', n: Number(v) };

export const formatAmount = (a: Amount): string => (a.kind === 'count' ? String(a.n) : `${a.pct}%`);

/** Hosts in flight at once for `total` targeted hosts (at least 1). */
export const windowSize = (a: Amount, total: number): number =>
  Math.max(1, a.kind === 'count' ? a.n : Math.ceil((total * a.pct) / 100));

/** Whether `bad` failed + unreachable + timed-out hosts pass the threshold (Ansible's max_fail_percentage: "more than"). */
export const thresholdPassed = (a: Amount, bad: number, total: number): boolean =>
  a.kind === 'count' ? bad > a.n : bad * 100 > a.pct * total;

export const jobRequestSchema = z.strictObject({
  event: z.string().max(100).describe('an event of the contract, e.g. "block ip"'),
  params: z.record(z.string(), z.unknown()).default({}).describe("the event's request fields"),
  target: targetSchema,
  window: amountInput(1).default(10).describe('hosts in flight at once: a number or a percentage ("10%")'),
  pauseSeconds: z.number().min(0).max(3_600).default(0).describe('pause between two host starts'),
  failThreshold: amountInput(0)
    .optional()
    .describe(
      'stop starting hosts once failed + unreachable + timed-out hosts pass this number or percentage; none: never stop',
    ),
  deadlineSeconds: z
    .number()
    .min(0.1)
    .max(3_600)
    .optional()
    .describe("per-host deadline; default the event's own timeout plus 2 s"),
  dryRun: z.boolean().default(false).describe('validate and check capabilities only; call no host'),
});
export type JobRequestIn = z.input<typeof jobRequestSchema>;

/** Settings stored with a job (JSON in jobs.settings). */
export interface JobSettings {
  window: string;
  pauseMs: number;
  failThreshold: string | null;
  deadlineMs: number | null;
}
