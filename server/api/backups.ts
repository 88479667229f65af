import { Router, type Request } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { hostIdParam, param } from '../http/params.ts';
import { sendReply } from './reply.ts';

const bodyOf = (req: Request): Record<string, unknown> =>
  req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body)
    ? (req.body as Record<string, unknown>)
    : {};

/** A query parameter as the caller sent it (the agent's schema judges it), or nothing. */
const queryOf = (req: Request, name: string): Record<string, unknown> => {
  const v: unknown = (req.query as Record<string, unknown>)[name];
  return v === undefined ? {} : { [name]: v };
};

/**
 * REST endpoints of the backups domain, relative to /api/v1/hosts/:hostId (mergeParams):
 *
 *   GET  /backups[?kind=site|database&name=…]   snapshots, sizes, schedule, last runs
 *   POST /backups                               back up { sites?, databases? } (all when empty) → 201
 *   POST /backups/:snapshot/restore             restore { as? } (same name: current state backed up first)
 *   PUT  /backups/settings                      schedule and retention
 *   POST /backups/prune                         retention + trash purge now
 *   POST /backups/check                         restic check now
 *
 * Validation is the agent's (shared zod schemas); every mutation is audited by ctx.actions.
 */
export function backupsApi(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  r.get('/backups', requireRole('viewer'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'list backups', {
        ...queryOf(req, 'kind'),
        ...queryOf(req, 'name'),
      }),
    );
  });
  r.post('/backups', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'back up', bodyOf(req) as never),
      201,
    );
  });
  r.post('/backups/:snapshot/restore', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'restore backup', {
        ...bodyOf(req),
        snapshot: param(req, 'snapshot'),
      }),
    );
  });
  r.put('/backups/settings', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'set backup settings', bodyOf(req) as never),
    );
  });
  r.post('/backups/prune', requireRole('operator'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), hostIdParam(req), 'prune backups', {}));
  });
  r.post('/backups/check', requireRole('operator'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), hostIdParam(req), 'check backups', {}));
  });
  return r;
}
