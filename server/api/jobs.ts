import { Router, type Request } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { requireWholeFleet } from '../auth/host-guard.ts';
import { PanelHttpError } from '../http/errors.ts';
import { param } from '../http/params.ts';
import { setHostLabels } from '../hosts/labels.ts';
import { jobJson, jobWithHosts } from '../jobs/views.ts';
import type { JobState } from '../jobs/store.ts';
import { HOST_OUTCOMES } from '../jobs/outcome.ts';

const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'stopped', 'cancelled', 'interrupted'];

function jobId(req: Request): number {
  const v = param(req, 'id');
  if (!/^\d{1,12}$/.test(v)) throw new PanelHttpError(400, 'invalid-argument', 'A job id is a number.');
  return Number(v);
}

const intQuery = (v: unknown, def: number): number =>
  typeof v === 'string' && /^\d{1,6}$/.test(v) ? Number(v) : def;

/**
 * /api/v1/jobs (fan-out jobs, docs/jobs.md) and /api/v1/hosts/:hostId/labels. Starting, cancelling,
 * retrying or resuming a job needs the role of its event (viewer for reads, operator for mutations).
 */
export function jobsApi(ctx: PanelContext): Router {
  const r = Router();
  r.post('/jobs', requireRole('viewer'), (req, res) => {
    const j = ctx.jobs.create(actorOf(req), req.body);
    res.status(202).json({ data: jobJson(j, ctx.jobs.store.counts(j.id)) });
  });
  r.post('/jobs/preview', requireRole('viewer'), (req, res) => {
    const body = (req.body ?? {}) as { target?: unknown; event?: unknown };
    const p = ctx.jobs.preview(body.target, body.event, actorOf(req));
    res.json({
      data: { count: p.hosts.length, summary: p.summary, hosts: p.hosts, outOfScope: p.outOfScope ?? 0 },
    });
  });
  r.get('/jobs', requireRole('viewer'), (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : undefined;
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state))
      throw new PanelHttpError(400, 'invalid-argument', `state is one of ${JOB_STATES.join(', ')}.`);
    const { rows, total } = ctx.jobs.store.list({
      ...ctx.jobs.listScope(actorOf(req)),
      ...(state ? { state: state as JobState } : {}),
      limit: intQuery(req.query.limit, 50),
      offset: intQuery(req.query.offset, 0),
    });
    res.json({ data: rows.map((j) => jobJson(j, ctx.jobs.store.counts(j.id))), total });
  });
  r.get('/jobs/:id', requireRole('viewer'), (req, res) => {
    const id = jobId(req);
    const j = ctx.jobs.get(id);
    if (!j || !ctx.jobs.visibleTo(actorOf(req), id))
      throw new PanelHttpError(404, 'not-found', `No job ${id}.`);
    const out = jobWithHosts(ctx.jobs.store, j);
    const filter = typeof req.query.hostState === 'string' ? req.query.hostState : undefined;
    if (filter !== undefined && !([...HOST_OUTCOMES, 'pending', 'running'] as string[]).includes(filter))
      throw new PanelHttpError(
        400,
        'invalid-argument',
        `hostState is one of ${[...HOST_OUTCOMES, 'pending', 'running'].join(', ')}.`,
      );
    res.json({ data: filter ? { ...out, hosts: out.hosts.filter((h) => h.state === filter) } : out });
  });
  for (const action of ['cancel', 'retry', 'resume'] as const)
    r.post(`/jobs/:id/${action}`, requireRole('viewer'), (req, res) => {
      const j = ctx.jobs[action](actorOf(req), jobId(req));
      res.status(action === 'cancel' ? 200 : 202).json({ data: jobJson(j, ctx.jobs.store.counts(j.id)) });
    });
  r.get('/hosts/:hostId/labels', requireRole('viewer'), (req, res) => {
    const id = param(req, 'hostId');
    if (!ctx.hosts.repo.get(id)) throw new PanelHttpError(404, 'not-found', `No host with id ${id}.`);
    res.json({ data: ctx.labels.get(id) });
  });
  // Labels decide who sees a host (host-scoped grants): a scoped operator may not change them,
  // or they could move a host into or out of their own scope (docs/security.md).
  r.put(
    '/hosts/:hostId/labels',
    requireRole('operator'),
    requireWholeFleet(ctx.scopes, 'changing labels'),
    (req, res) => {
      const id = param(req, 'hostId');
      if (!ctx.hosts.repo.get(id)) throw new PanelHttpError(404, 'not-found', `No host with id ${id}.`);
      const body = (req.body ?? {}) as { labels?: unknown };
      const out = setHostLabels(
        { hosts: ctx.hosts.repo, labels: ctx.labels, audit: ctx.audit },
        actorOf(req),
        id,
        body.labels,
      );
      ctx.events.emit('hostsChanged');
      res.json({ data: out.labels });
    },
  );
  return r;
}
