import { rpcEvents, type EventName } from '../../shared/protocol/index.ts';
import { ENVELOPE_KEYS } from '../../shared/protocol/define.ts';
import { describeZodError } from '../../shared/protocol/describe.ts';
import { parseSelector } from '../../shared/validate/labels.ts';
import type { Actor } from '../db/audit.ts';
import { PanelHttpError } from '../http/errors.ts';
import { roleAtLeast, type Role } from '../auth/roles.ts';
import {
  formatAmount,
  isJobEvent,
  jobRequestSchema,
  parseAmount,
  type JobSettings,
  type JobTarget,
} from './spec.ts';

/** A job request checked once, before anything starts. */
export interface CheckedJob {
  event: EventName;
  params: Record<string, unknown>;
  target: JobTarget;
  settings: JobSettings;
  dryRun: boolean;
  /** The params hold a secret field (kept in memory only, never stored). */
  hasSecrets: boolean;
}

/** The role a job's event needs (and so cancelling, retrying or resuming it). */
export const roleForEvent = (event: EventName): Role => (rpcEvents[event].mutation ? 'operator' : 'viewer');

export function requireEventRole(actor: Actor, event: EventName): void {
  const needed = roleForEvent(event);
  if (!roleAtLeast(actor.role, needed))
    throw new PanelHttpError(
      403,
      'permission-denied',
      `Your role (${actor.role}) cannot run "${event}" (needs ${needed}).`,
    );
}

/**
 * Checks a job request: the shape, the event (one a job may run), the actor's role for it, the
 * params against the event's own zod schema (shared/protocol), the selector's syntax. Throws
 * PanelHttpError 400/403 with a sentence.
 */
export function checkJobRequest(actor: Actor, input: unknown): CheckedJob {
  const parsed = jobRequestSchema.safeParse(input);
  if (!parsed.success) throw new PanelHttpError(400, 'invalid-argument', describeZodError(parsed.error));
  const req = parsed.data;
  if (!isJobEvent(req.event))
    throw new PanelHttpError(
      400,
      'invalid-argument',
      `${JSON.stringify(req.event.slice(0, 80))} is not an event a job can run (docs/jobs.md lists them).`,
    );
  const event = req.event;
  const def = rpcEvents[event];
  requireEventRole(actor, event);
  if (ENVELOPE_KEYS.some((k) => k in req.params))
    throw new PanelHttpError(
      400,
      'invalid-argument',
      'A job gives each host its own requestId and deadline (set the per-host deadline instead); leave requestId and deadlineMs out.',
    );
  const checked = def.request.safeParse(req.params);
  if (!checked.success)
    throw new PanelHttpError(400, 'invalid-argument', `${event}: ${describeZodError(checked.error)}`);
  if (req.target.selector !== undefined) {
    const sel = parseSelector(req.target.selector);
    if (!sel.ok) throw new PanelHttpError(400, 'invalid-argument', sel.message);
  }
  return {
    event,
    params: req.params,
    target: req.target,
    settings: {
      window: formatAmount(parseAmount(req.window)),
      pauseMs: Math.round(req.pauseSeconds * 1000),
      failThreshold: req.failThreshold === undefined ? null : formatAmount(parseAmount(req.failThreshold)),
      deadlineMs: req.deadlineSeconds === undefined ? null : Math.round(req.deadlineSeconds * 1000),
    },
    dryRun: req.dryRun,
    hasSecrets: (def.secrets ?? []).some((k) => req.params[k] !== undefined),
  };
}
