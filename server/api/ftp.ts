import { Router, type Request } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { hostIdParam, param } from '../http/params.ts';
import { sendReply } from './reply.ts';

const bodyOf = (req: Request): Record<string, unknown> =>
  req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body)
    ? (req.body as Record<string, unknown>)
    : {};

/**
 * REST endpoints of the ftp domain, relative to /api/v1/hosts/:hostId (mergeParams):
 *
 *   GET    /ftp-users                      list
 *   POST   /ftp-users                      create  { username, password, home }   → 201
 *   PUT    /ftp-users/:username/password   set the password { password }
 *   POST   /ftp-users/:username/disable    refuse logins (nothing deleted)
 *   POST   /ftp-users/:username/enable     allow logins again
 *   DELETE /ftp-users/:username            delete the account (files kept)
 *
 * Validation is the agent's (shared zod schemas); every mutation is audited with the password
 * redacted by ctx.actions.
 */
export function ftpApi(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  const user = (req: Request): string => param(req, 'username');

  r.get('/ftp-users', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), hostIdParam(req), 'list ftp users', {}));
  });
  r.post('/ftp-users', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(
      actorOf(req),
      hostIdParam(req),
      'create ftp user',
      bodyOf(req) as never,
    );
    sendReply(res, reply, 201);
  });
  r.put('/ftp-users/:username/password', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'set ftp password', {
      ...bodyOf(req),
      username: user(req),
    } as never);
    sendReply(res, reply);
  });
  r.post('/ftp-users/:username/disable', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'disable ftp user', { username: user(req) }),
    );
  });
  r.post('/ftp-users/:username/enable', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'enable ftp user', { username: user(req) }),
    );
  });
  r.delete('/ftp-users/:username', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'delete ftp user', { username: user(req) }),
    );
  });
  return r;
}
