import { Router, type Request } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { hostIdParam, param } from '../http/params.ts';
import { sendReply } from './reply.ts';

const bodyOf = (req: Request): Record<string, unknown> =>
  req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body)
    ? (req.body as Record<string, unknown>)
    : {};

/** A body's requestId (retry-safe mutations), passed on for the agent to check. */
const withRequestId = (req: Request, params: Record<string, unknown>): never => {
  const id = bodyOf(req).requestId;
  return (id === undefined ? params : { ...params, requestId: id }) as never;
};

/**
 * REST endpoints of the firewall domain, relative to /api/v1/hosts/:hostId (mergeParams):
 *
 *   GET    /firewall                      rules, blocks, baseline, pending confirmation, other tools' rules
 *   POST   /firewall/rules                add { action, protocol, family?, port?, source?, comment?, position? } → 201
 *   DELETE /firewall/rules/:id            delete a rule
 *   POST   /firewall/blocks               block { address, expiresInSeconds?, comment? } → 201
 *   DELETE /firewall/blocks/:address      unblock (a CIDR's "/" URL-encoded as %2F)
 *   POST   /firewall/baseline             apply the recommended baseline (confirm mode)
 *   DELETE /firewall/baseline             turn the baseline's fixed parts off
 *   POST   /firewall/reapply              apply the saved rule set again (chains changed outside PonIO)
 *   POST   /firewall/confirm              keep a change applied in confirm mode
 *
 * A change that closes SSH or the agent port answers `{ data: { pending: { dueAt, reason } } }`:
 * POST /firewall/confirm before dueAt or the agent restores the previous rules. A change that
 * would cut the panel's own connection is refused (409 failed-precondition). Validation is the
 * agent's (shared zod schemas); every mutation is audited by ctx.actions.
 */
export function firewallApi(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });

  r.get('/firewall', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), hostIdParam(req), 'list firewall rules', {}));
  });
  r.post('/firewall/rules', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(
      actorOf(req),
      hostIdParam(req),
      'add firewall rule',
      bodyOf(req) as never,
    );
    sendReply(res, reply, 201);
  });
  r.delete('/firewall/rules/:id', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(
        actorOf(req),
        hostIdParam(req),
        'delete firewall rule',
        withRequestId(req, { id: param(req, 'id') }),
      ),
    );
  });
  r.post('/firewall/blocks', requireRole('operator'), async (req, res) => {
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'block ip', bodyOf(req) as never);
    sendReply(res, reply, 201);
  });
  r.delete('/firewall/blocks/:address', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(
        actorOf(req),
        hostIdParam(req),
        'unblock ip',
        withRequestId(req, { address: param(req, 'address') }),
      ),
    );
  });
  r.post('/firewall/baseline', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(
        actorOf(req),
        hostIdParam(req),
        'apply firewall baseline',
        withRequestId(req, {}),
      ),
    );
  });
  r.delete('/firewall/baseline', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(
        actorOf(req),
        hostIdParam(req),
        'remove firewall baseline',
        withRequestId(req, {}),
      ),
    );
  });
  r.post('/firewall/reapply', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'reapply firewall', withRequestId(req, {})),
    );
  });
  r.post('/firewall/confirm', requireRole('operator'), async (req, res) => {
    sendReply(
      res,
      await ctx.actions.call(actorOf(req), hostIdParam(req), 'confirm firewall', withRequestId(req, {})),
    );
  });
  return r;
}
