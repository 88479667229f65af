import { Router, type Request, type Response } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { MODULE_NAMES, rpcEvents, type EventName } from '../../shared/protocol/index.ts';
import { JOB_EVENTS, isJobEvent } from '../jobs/spec.ts';
import { paramFields, paramsFromText } from '../jobs/params.ts';
import { jobWithHosts, jobJson } from '../jobs/views.ts';
import { OUTCOME_LABELS, type HostState } from '../jobs/outcome.ts';
import type { JobState } from '../jobs/store.ts';
import { roleForEvent } from '../jobs/request.ts';
import { roleAtLeast } from '../auth/roles.ts';
import { setHostLabels } from '../hosts/labels.ts';
import { requireWholeFleet } from '../auth/host-guard.ts';
import { PanelHttpError } from './errors.ts';
import { param } from './params.ts';
import { renderPage } from './render.ts';
import { setFlash } from './flash.ts';

const str = (v: unknown, max = 2000): string => (typeof v === 'string' ? v.slice(0, max) : '');
const HOST_STATES: HostState[] = ['ok', 'failed', 'unreachable', 'timeout', 'skipped', 'running', 'pending'];
const JOB_STATES: JobState[] = ['queued', 'running', 'done', 'stopped', 'cancelled', 'interrupted'];

/** The new-job form's fields as typed (re-shown after a preview or a refusal). */
interface JobForm {
  event: EventName;
  params: Record<string, string>;
  targetKind: 'all' | 'hosts' | 'selector';
  hosts: string;
  selector: string;
  module: string;
  exclude: string;
  window: string;
  pauseSeconds: string;
  failThreshold: string;
  deadlineSeconds: string;
  dryRun: boolean;
}

const splitList = (s: string): string[] =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

function formFrom(b: Record<string, unknown>): JobForm {
  const event = isJobEvent(b.event) ? b.event : 'ping';
  const params: Record<string, string> = {};
  for (const f of paramFields(event)) {
    const v = b[`p.${f.name}`];
    if (f.kind === 'boolean') params[f.name] = v === 'on' ? 'true' : '';
    else if (typeof v === 'string') params[f.name] = v.slice(0, 10_000);
  }
  const kind = b.targetKind === 'hosts' || b.targetKind === 'selector' ? b.targetKind : 'all';
  return {
    event,
    params,
    targetKind: kind,
    hosts: str(b.hosts, 20_000),
    selector: str(b.selector, 1024),
    module: str(b.module, 20),
    exclude: str(b.exclude, 20_000),
    window: str(b.window, 10) || '10',
    pauseSeconds: str(b.pauseSeconds, 10),
    failThreshold: str(b.failThreshold, 10),
    deadlineSeconds: str(b.deadlineSeconds, 10),
    dryRun: b.dryRun === 'on',
  };
}

const emptyForm = (event: EventName): JobForm => ({
  event,
  params: {},
  targetKind: 'selector',
  hosts: '',
  selector: '',
  module: '',
  exclude: '',
  window: '10',
  pauseSeconds: '',
  failThreshold: '',
  deadlineSeconds: '',
  dryRun: false,
});

function targetOf(f: JobForm): Record<string, unknown> {
  const t: Record<string, unknown> = {};
  if (f.targetKind === 'all') t.all = true;
  if (f.targetKind === 'hosts') t.hosts = splitList(f.hosts);
  if (f.targetKind === 'selector') t.selector = f.selector;
  if (f.module) t.module = f.module;
  if (f.exclude.trim()) t.exclude = splitList(f.exclude);
  return t;
}

/** The form as a job request (numbers as numbers); refusals as PanelHttpError 400. */
function requestOf(f: JobForm): Record<string, unknown> {
  const p = paramsFromText(f.event, f.params);
  if (!p.ok) throw new PanelHttpError(400, 'invalid-argument', p.message);
  const num = (v: string, name: string): number | undefined => {
    if (v.trim() === '') return undefined;
    if (!/^\d+(\.\d+)?$/.test(v.trim()))
      throw new PanelHttpError(400, 'invalid-argument', `${name} is a number of seconds.`);
    return Number(v);
  };
  const amount = (v: string): number | string => (/^\d+$/.test(v.trim()) ? Number(v) : v.trim());
  const pause = num(f.pauseSeconds, 'The pause');
  const deadline = num(f.deadlineSeconds, 'The deadline');
  return {
    event: f.event,
    params: p.params,
    target: targetOf(f),
    window: amount(f.window),
    ...(pause === undefined ? {} : { pauseSeconds: pause }),
    ...(f.failThreshold.trim() ? { failThreshold: amount(f.failThreshold) } : {}),
    ...(deadline === undefined ? {} : { deadlineSeconds: deadline }),
    dryRun: f.dryRun,
  };
}

function jobId(req: Request): number {
  const v = param(req, 'id');
  if (!/^\d{1,12}$/.test(v)) throw new PanelHttpError(404, 'not-found', 'No such job.');
  return Number(v);
}

/**
 * The Jobs pages (docs/jobs.md, docs/dashboard.md): the list, the new-job form (event, its
 * parameter fields, target with preview, batch settings) and a job's page (live per-host
 * progress, results with filters, cancel / retry / resume). Plain forms: everything works
 * without JavaScript; with it the job's region refreshes live over the browser socket.
 * Also the host labels form on the host page (POST /hosts/:hostId/labels).
 */
export function jobsPages(ctx: PanelContext): Router {
  const r = Router();
  const eventGroups = MODULE_NAMES.map((m) => ({
    module: m,
    events: JOB_EVENTS.filter((e) => rpcEvents[e].module === m),
  })).filter((g) => g.events.length > 0);

  const renderForm = (req: Request, res: Response, form: JobForm, extra: Record<string, unknown>): void => {
    const actor = actorOf(req);
    renderPage(req, res, 'jobs/new', {
      title: 'New job',
      form,
      fields: paramFields(form.event),
      summary: rpcEvents[form.event].summary,
      mutation: rpcEvents[form.event].mutation,
      allowed: roleAtLeast(actor.role, roleForEvent(form.event)),
      eventGroups,
      modules: MODULE_NAMES,
      preview: null,
      error: null,
      ...extra,
    });
  };

  r.get('/jobs', requireRole('viewer'), (req, res) => {
    const state =
      typeof req.query.state === 'string' && (JOB_STATES as string[]).includes(req.query.state)
        ? (req.query.state as JobState)
        : undefined;
    const { rows, total } = ctx.jobs.store.list({
      ...ctx.jobs.listScope(actorOf(req)),
      ...(state ? { state } : {}),
      limit: 100,
    });
    renderPage(req, res, 'jobs/list', {
      title: 'Jobs',
      jobs: rows.map((j) => jobJson(j, ctx.jobs.store.counts(j.id))),
      total,
      state: state ?? '',
      states: JOB_STATES,
    });
  });

  r.get('/jobs/new', requireRole('viewer'), (req, res) => {
    const event = isJobEvent(req.query.event) ? req.query.event : 'ping';
    const form = emptyForm(event);
    if (typeof req.query.selector === 'string') form.selector = req.query.selector.slice(0, 1024);
    renderForm(req, res, form, {});
  });

  r.post('/jobs', requireRole('viewer'), (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const form = formFrom(b);
    const action = b.do === 'start' ? 'start' : b.do === 'preview' ? 'preview' : 'choose';
    if (action === 'choose') {
      renderForm(req, res, { ...form, params: {} }, {});
      return;
    }
    try {
      if (action === 'preview') {
        const p = ctx.jobs.preview(targetOf(form), form.event, actorOf(req));
        renderForm(req, res, form, { preview: p });
        return;
      }
      const j = ctx.jobs.create(actorOf(req), requestOf(form));
      setFlash(req, 'success', `Job ${j.id} started: ${j.event}.`);
      res.redirect(303, `/jobs/${j.id}`);
    } catch (e) {
      if (!(e instanceof PanelHttpError) || e.status >= 500) throw e;
      res.status(e.status);
      renderForm(req, res, form, { error: e.message });
    }
  });

  r.get('/jobs/:id', requireRole('viewer'), (req, res) => {
    const id = jobId(req);
    const row = ctx.jobs.get(id);
    if (!row || !ctx.jobs.visibleTo(actorOf(req), id))
      throw new PanelHttpError(404, 'not-found', `No job ${id}.`);
    const job = jobWithHosts(ctx.jobs.store, row);
    const filter =
      typeof req.query.state === 'string' && (HOST_STATES as string[]).includes(req.query.state)
        ? (req.query.state as HostState)
        : null;
    const q = typeof req.query.q === 'string' ? req.query.q.slice(0, 100).toLowerCase() : '';
    const actor = actorOf(req);
    const mayAct = isJobEvent(row.event) && roleAtLeast(actor.role, roleForEvent(row.event));
    const finished = row.state !== 'queued' && row.state !== 'running';
    const c = job.counts;
    renderPage(req, res, 'jobs/show', {
      title: `Job ${id}`,
      job,
      jobId: id,
      hosts: job.hosts.filter(
        (h) => (filter === null || h.state === filter) && (q === '' || h.hostName.toLowerCase().includes(q)),
      ),
      filter,
      q,
      hostStates: HOST_STATES,
      labels: OUTCOME_LABELS,
      canCancel: mayAct && !finished,
      canRetry: mayAct && finished && !job.dryRun && c.failed + c.unreachable + c.timeout > 0,
      canResume:
        mayAct &&
        finished &&
        !job.dryRun &&
        (c.pending > 0 ||
          job.hosts.some(
            (h) => h.state === 'skipped' && (h.errorCode === 'threshold' || h.errorCode === 'cancelled'),
          )),
    });
  });

  for (const action of ['cancel', 'retry', 'resume'] as const)
    r.post(`/jobs/:id/${action}`, requireRole('viewer'), (req, res) => {
      const id = jobId(req);
      try {
        ctx.jobs[action](actorOf(req), id);
        setFlash(
          req,
          'success',
          action === 'cancel' ? `Job ${id}: cancel requested.` : `Job ${id} queued again (${action}).`,
        );
      } catch (e) {
        if (!(e instanceof PanelHttpError) || e.status >= 500) throw e;
        if (e.status === 404) throw e;
        setFlash(req, 'danger', e.message);
      }
      res.redirect(303, `/jobs/${id}`);
    });

  // Labels decide who sees a host: a scoped operator may not change them (docs/security.md).
  r.post(
    '/hosts/:hostId/labels',
    requireRole('operator'),
    requireWholeFleet(ctx.scopes, 'changing labels'),
    (req, res) => {
      const id = param(req, 'hostId');
      if (!ctx.hosts.repo.get(id)) throw new PanelHttpError(404, 'not-found', `No host with id ${id}.`);
      try {
        setHostLabels(
          { hosts: ctx.hosts.repo, labels: ctx.labels, audit: ctx.audit },
          actorOf(req),
          id,
          str((req.body as Record<string, unknown> | undefined)?.labels, 5000),
        );
        ctx.events.emit('hostsChanged');
        setFlash(req, 'success', 'Labels saved.');
      } catch (e) {
        if (!(e instanceof PanelHttpError) || e.status !== 400) throw e;
        setFlash(req, 'danger', e.message);
      }
      res.redirect(303, `/hosts/${encodeURIComponent(id)}`);
    },
  );
  return r;
}
