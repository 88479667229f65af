import { Router, type Request } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import type { Reply } from '../../shared/protocol/index.ts';
import { setFlash } from './flash.ts';
import { renderTab } from './host-page.ts';
import { hostIdParam, param } from './params.ts';

type Form = Record<string, string | undefined>;
const formOf = (req: Request): Form =>
  req.body !== null && typeof req.body === 'object' ? (req.body as Form) : {};

/** A form field: trimmed, or undefined when empty (so optional fields stay absent). */
const field = (f: Form, name: string): string | undefined => {
  const v = f[name];
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
};

/** A whole number from a form field; an unparsable one is passed on as is, for the agent to refuse clearly. */
const numberField = (f: Form, name: string): number | string | undefined => {
  const v = field(f, name);
  if (v === undefined) return undefined;
  return /^[0-9]{1,9}$/.test(v) ? Number(v) : v;
};

type Pending = { dueAt: number; reason: string } | null;
const pendingOf = (r: Reply<unknown>): Pending =>
  r.ok && r.data !== null && typeof r.data === 'object' && 'pending' in r.data
    ? ((r.data as { pending: Pending }).pending ?? null)
    : null;

/**
 * Dashboard tab of the firewall domain, mounted at /hosts/:hostId/firewall (mergeParams): rules
 * table with add/delete forms, block list with expiry, the baseline, the read-only view of other
 * tools' rules, and a banner with a Confirm button and countdown while a change is pending.
 * Every form works without JavaScript (POST → 303 back with a flash message).
 */
export function firewallPages(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  const base = (req: Request): string => `/hosts/${encodeURIComponent(hostIdParam(req))}/firewall`;

  /** Flashes the outcome of a change (success, pending confirmation, or the agent's message). */
  const report = (req: Request, reply: Reply<unknown>, done: string): void => {
    if (!reply.ok) {
      setFlash(req, 'danger', reply.error.message);
      return;
    }
    const p = pendingOf(reply);
    if (p) setFlash(req, 'warning', `${done} ${p.reason} Confirm it below.`);
    else setFlash(req, 'success', done);
  };

  r.get('/', requireRole('viewer'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'list firewall rules', {});
    const now = Date.now();
    // The agent's own count (its clock may differ from the panel's); dueAt only for older agents.
    const pending = reply.ok ? reply.data.pending : null;
    const msLeft = pending ? Math.max(0, pending.msLeft ?? pending.dueAt - now) : 0;
    await renderTab(ctx, req, res, 'firewall', {
      fw: reply.ok ? reply.data : null,
      listError: reply.ok ? null : reply.error.message,
      now,
      msLeft,
      secondsLeft: Math.ceil(msLeft / 1000),
    });
  });

  r.post('/rules', requireRole('operator'), async (req, res) => {
    const f = formOf(req);
    const params: Record<string, unknown> = {
      action: field(f, 'action') ?? '',
      protocol: field(f, 'protocol') ?? '',
    };
    const family = field(f, 'family');
    if (family !== undefined && family !== 'both') params.family = family;
    for (const name of ['port', 'source', 'comment'] as const) {
      const v = field(f, name);
      if (v !== undefined) params[name] = v;
    }
    const position = numberField(f, 'position');
    if (position !== undefined) params.position = position;
    const reply = await ctx.actions.call(
      actorOf(req),
      hostIdParam(req),
      'add firewall rule',
      params as never,
    );
    report(req, reply, 'Rule added.');
    res.redirect(303, base(req));
  });

  /** Destructive forms carry a required checkbox; without it nothing happens (no-JS confirmation). */
  const confirmed = (req: Request): boolean => {
    if (formOf(req).confirm === 'yes') return true;
    setFlash(req, 'warning', 'Nothing changed: tick the confirmation box first.');
    return false;
  };

  r.post('/rules/:ruleId/delete', requireRole('operator'), async (req, res) => {
    if (!confirmed(req)) return res.redirect(303, base(req));
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'delete firewall rule', {
      id: param(req, 'ruleId'),
    });
    report(req, reply, 'Rule deleted.');
    res.redirect(303, base(req));
  });

  r.post('/blocks', requireRole('operator'), async (req, res) => {
    const f = formOf(req);
    const params: Record<string, unknown> = { address: field(f, 'address') ?? '' };
    const minutes = numberField(f, 'expiresInMinutes');
    if (typeof minutes === 'number' && minutes > 0) params.expiresInSeconds = minutes * 60;
    else if (minutes !== undefined && minutes !== 0) params.expiresInSeconds = minutes; // refused by the agent
    const comment = field(f, 'comment');
    if (comment !== undefined) params.comment = comment;
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'block ip', params as never);
    report(req, reply, `${String(params.address)} blocked.`);
    res.redirect(303, base(req));
  });

  r.post('/blocks/unblock', requireRole('operator'), async (req, res) => {
    const address = field(formOf(req), 'address') ?? '';
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'unblock ip', { address });
    report(req, reply, `${address} unblocked.`);
    res.redirect(303, base(req));
  });

  r.post('/baseline', requireRole('operator'), async (req, res) => {
    if (!confirmed(req)) return res.redirect(303, base(req));
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'apply firewall baseline', {});
    report(req, reply, 'Baseline applied.');
    res.redirect(303, base(req));
  });

  r.post('/baseline/remove', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'remove firewall baseline', {});
    report(req, reply, 'Baseline removed (your own rules stay).');
    res.redirect(303, base(req));
  });

  r.post('/reapply', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'reapply firewall', {});
    report(req, reply, 'PonIO’s rules were applied again.');
    res.redirect(303, base(req));
  });

  r.post('/confirm', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'confirm firewall', {});
    if (!reply.ok) setFlash(req, 'danger', reply.error.message);
    else if (reply.data.confirmed) setFlash(req, 'success', 'Firewall change confirmed; it stays.');
    else setFlash(req, 'info', 'Nothing was waiting for confirmation (it may have reverted already).');
    res.redirect(303, base(req));
  });

  return r;
}
