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
 * REST endpoints of the mysql domain, relative to /api/v1/hosts/:hostId (mergeParams):
 *
 *   GET    /databases                                      list (with sizes)
 *   POST   /databases                                      create { name, charset?, collation? } → 201
 *   DELETE /databases/:name                                drop (and its grants)
 *   GET    /database-users                                 list (with grants)
 *   POST   /database-users                                 create { user, host, password } → 201
 *   PUT    /database-users/:user/:host/password            set the password { password }
 *   PUT    /database-users/:user/:host/grants/:database    set privileges { privileges: "all" | "read-only" | [..] }
 *   DELETE /database-users/:user/:host/grants/:database    revoke everything on that database
 *   DELETE /database-users/:user/:host                     drop the account
 *
 * `:host` is URL-encoded (`%` → `%25`, `/` → `%2F`). Validation is the agent's (shared zod
 * schemas); mutations are audited by ctx.actions with the password redacted.
 */
export function mysqlApi(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  const account = (req: Request): { user: string; host: string } => ({
    user: param(req, 'user'),
    host: param(req, 'host'),
  });

  r.get('/databases', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), hostIdParam(req), 'list databases', {}));
  });
  r.post('/databases', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(
      actorOf(req),
      hostIdParam(req),
      'create database',
      bodyOf(req) as never,
    );
    sendReply(res, reply, 201);
  });
  r.delete('/databases/:name', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'drop database', { name: param(req, 'name') }),
    );
  });

  r.get('/database-users', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), hostIdParam(req), 'list database users', {}));
  });
  r.post('/database-users', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(
      actorOf(req),
      hostIdParam(req),
      'create database user',
      bodyOf(req) as never,
    );
    sendReply(res, reply, 201);
  });
  r.put('/database-users/:user/:host/password', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'set database password', {
      ...bodyOf(req),
      ...account(req),
    } as never);
    sendReply(res, reply);
  });
  r.put('/database-users/:user/:host/grants/:database', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'grant database', {
      ...bodyOf(req),
      ...account(req),
      database: param(req, 'database'),
    } as never);
    sendReply(res, reply);
  });
  r.delete('/database-users/:user/:host/grants/:database', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'revoke database', {
      ...account(req),
      database: param(req, 'database'),
    });
    sendReply(res, reply);
  });
  r.delete('/database-users/:user/:host', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'drop database user', account(req)),
    );
  });
  return r;
}
