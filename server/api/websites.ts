import { Router, type Request } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { PanelHttpError } from '../http/errors.ts';
import { hostIdParam, param } from '../http/params.ts';
import { sendReply } from './reply.ts';

const bodyOf = (req: Request): Record<string, unknown> =>
  req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body)
    ? (req.body as Record<string, unknown>)
    : {};

/** `?removeFiles=true|false|1|0` (absent = false); anything else is refused, never guessed. */
function removeFilesQuery(req: Request): boolean {
  const v: unknown = (req.query as Record<string, unknown>).removeFiles;
  if (v === undefined) return false;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new PanelHttpError(400, 'invalid-argument', 'removeFiles must be true or false.');
}

/**
 * REST endpoints of the websites domain, relative to /api/v1/hosts/:hostId (mergeParams):
 *
 *   GET    /websites                          list (with enabled/managed state)
 *   POST   /websites                          create { domain, aliases?, adminEmail? } → 201
 *   POST   /websites/:domain/enable           serve it again
 *   POST   /websites/:domain/disable          stop serving it (files kept)
 *   DELETE /websites/:domain[?removeFiles=true]  delete the vhost (files only when asked)
 *   PUT    /websites/:domain/php          { php: '8.2' | 'none', phpSettings? } PHP-FPM of the site
 *   PUT    /websites/:domain/https        { https: acme|own|off, redirect?, hsts?, certificate?, key? }
 *   POST   /websites/:domain/renew-certificate   renew the ACME certificate now
 *
 * Validation is the agent's (shared zod schemas: IDNs become punycode, hostile names are
 * refused with invalid-argument); every mutation is audited by ctx.actions.
 */
export function websitesApi(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  const domain = (req: Request): string => param(req, 'domain');

  r.get('/websites', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), hostIdParam(req), 'list websites', {}));
  });
  r.post('/websites', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(
      actorOf(req),
      hostIdParam(req),
      'create website',
      bodyOf(req) as never,
    );
    sendReply(res, reply, 201);
  });
  for (const action of ['enable', 'disable'] as const) {
    r.post(`/websites/:domain/${action}`, requireRole('operator'), async (req, res) => {
      sendReply(
        res,
        await ctx.actions.call(actorOf(req), hostIdParam(req), `${action} website`, {
          domain: domain(req),
        }),
      );
    });
  }
  r.put('/websites/:domain/php', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'set website php', {
        ...bodyOf(req),
        domain: domain(req),
      } as never),
    );
  });
  r.put('/websites/:domain/https', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'set website https', {
        ...bodyOf(req),
        domain: domain(req),
      } as never),
    );
  });
  r.post('/websites/:domain/renew-certificate', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'renew website certificate', {
        domain: domain(req),
      }),
    );
  });
  r.delete('/websites/:domain', requireRole('operator'), async (req, res) => {
    const removeFiles = removeFilesQuery(req);
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'delete website', {
        domain: domain(req),
        removeFiles,
      }),
    );
  });
  return r;
}
