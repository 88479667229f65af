import { Router, type Request, type Response } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { BACKUP_LIMITS } from '../../shared/validate/backups.ts';
import type { BackupSettings } from '../../shared/protocol/events/backups.ts';
import { hostIdParam, param } from './params.ts';
import { moduleStatusOf, renderTab } from './host-page.ts';
import { setFlash } from './flash.ts';

const field = (req: Request, name: string): string => {
  const v: unknown = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

const NUMBER_FIELDS = [
  'everyHours',
  'keepDaily',
  'keepWeekly',
  'keepMonthly',
  'trashDays',
  'checkEveryDays',
] as const;
const LIMIT_OF: Record<(typeof NUMBER_FIELDS)[number], { min: number; max: number }> = {
  everyHours: BACKUP_LIMITS.everyHours,
  keepDaily: BACKUP_LIMITS.keep,
  keepWeekly: BACKUP_LIMITS.keep,
  keepMonthly: BACKUP_LIMITS.keep,
  trashDays: BACKUP_LIMITS.trashDays,
  checkEveryDays: BACKUP_LIMITS.checkEveryDays,
};

/** The settings form as the agent's request, or the sentence that says which field is wrong. */
export function settingsFromForm(body: (name: string) => string): Partial<BackupSettings> | string {
  const out: Partial<BackupSettings> = { scheduleEnabled: body('scheduleEnabled') === 'yes' };
  for (const k of NUMBER_FIELDS) {
    const raw = body(k).trim();
    if (raw === '') continue;
    if (!/^[0-9]{1,6}$/.test(raw))
      return `${k} must be a whole number from ${LIMIT_OF[k].min} to ${LIMIT_OF[k].max}.`;
    out[k] = Number(raw);
  }
  return out;
}

/**
 * The Backups tab at /hosts/:hostId/backups: snapshots per site and database with sizes, the
 * trash, the last runs and their results, the schedule and retention, and restores. Every form
 * works without JavaScript (POST → 303 back with a flash). A restore form says what it replaces
 * and needs its checkbox ticked.
 */
export function backupsPages(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  const tabUrl = (hostId: string): string => `/hosts/${encodeURIComponent(hostId)}/backups`;
  const back = (req: Request, res: Response, ok: boolean, message: string): void => {
    setFlash(req, ok ? 'success' : 'danger', message);
    res.redirect(303, tabUrl(hostIdParam(req)));
  };

  r.get('/', requireRole('viewer'), async (req, res) => {
    const actor = actorOf(req);
    const hostId = hostIdParam(req);
    const h = ctx.hosts.get(hostId);
    const has = (m: string): boolean => (h ? moduleStatusOf(h, m).available : false);
    const [list, sites, dbs] = await Promise.all([
      ctx.actions.call(actor, hostId, 'list backups', {}),
      has('websites') ? ctx.actions.call(actor, hostId, 'list websites', {}) : null,
      has('mysql') ? ctx.actions.call(actor, hostId, 'list databases', {}) : null,
    ]);
    const live = {
      site: new Set(sites?.ok ? sites.data.websites.map((w) => w.domain) : []),
      database: new Set(dbs?.ok ? dbs.data.databases.map((d) => d.name) : []),
    };
    const snapshots = list.ok
      ? list.data.snapshots.map((s) => ({ ...s, exists: live[s.kind].has(s.name) }))
      : [];
    await renderTab(ctx, req, res, 'backups', {
      backups: list.ok ? list.data : null,
      regular: snapshots.filter((s) => s.reason !== 'trash'),
      trash: snapshots.filter((s) => s.reason === 'trash'),
      listError: list.ok ? null : list.error.message,
      limits: BACKUP_LIMITS,
    });
  });

  r.post('/run', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'back up', {});
    back(
      req,
      res,
      reply.ok,
      reply.ok
        ? reply.data.snapshots.length === 0
          ? 'Nothing to back up: there are no sites or databases.'
          : `Backed up ${reply.data.snapshots.map((s) => s.name).join(', ')}.`
        : reply.error.message,
    );
  });

  r.post('/:snapshot/restore', requireRole('operator'), async (req, res) => {
    const snapshot = param(req, 'snapshot');
    if (field(req, 'confirm') !== 'yes') {
      back(req, res, false, 'Tick the box that says what the restore replaces to restore this snapshot.');
      return;
    }
    const as = field(req, 'as').trim();
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'restore backup', {
      snapshot,
      ...(as !== '' ? { as } : {}),
    });
    back(
      req,
      res,
      reply.ok,
      reply.ok
        ? `The ${reply.data.kind} ${reply.data.name} was restored from snapshot ${snapshot.slice(0, 8)}${reply.data.before ? `; what it replaced is snapshot ${reply.data.before}` : ''}.`
        : reply.error.message,
    );
  });

  r.post('/settings', requireRole('operator'), async (req, res) => {
    const s = settingsFromForm((n) => field(req, n));
    if (typeof s === 'string') {
      back(req, res, false, s);
      return;
    }
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'set backup settings', s);
    back(req, res, reply.ok, reply.ok ? 'Backup schedule and retention saved.' : reply.error.message);
  });

  r.post('/prune', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'prune backups', {});
    back(req, res, reply.ok, reply.ok ? reply.data.message : reply.error.message);
  });

  r.post('/check', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'check backups', {});
    back(
      req,
      res,
      reply.ok && reply.data.ok,
      reply.ok ? `Repository check: ${reply.data.message}` : reply.error.message,
    );
  });

  return r;
}
