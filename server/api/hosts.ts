import { Router } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { sendReply } from './reply.ts';
import { PanelHttpError } from '../http/errors.ts';
import { param } from '../http/params.ts';
import type { HostView } from '../hosts/registry.ts';

export const hostJson = (h: HostView) => ({
  id: h.id,
  name: h.name,
  address: h.address,
  port: h.port,
  status: h.status,
  certificate: h.cert_serial ? { serial: h.cert_serial, notAfter: h.cert_not_after } : null,
  createdAt: h.created_at,
  enrolledAt: h.enrolled_at,
  connection: h.connection
    ? {
        state: h.connection.state,
        lastSeen: h.connection.lastSeen,
        lastError: h.connection.lastError,
        agentVersion: h.connection.hello?.agentVersion ?? null,
        hostname: h.connection.hello?.hostname ?? null,
        mode: h.connection.hello?.mode ?? null,
        modules: h.connection.hello?.modules ?? [],
      }
    : null,
});

/** /api/v1/hosts: the host list and one host (enrollment adds POST and DELETE). */
export function hostsApi(ctx: PanelContext): Router {
  const r = Router();
  r.get('/hosts', requireRole('viewer'), (_req, res) => {
    res.json({ data: ctx.hosts.list().map(hostJson) });
  });
  r.get('/hosts/:hostId', requireRole('viewer'), (req, res) => {
    const id = param(req, 'hostId');
    const h = ctx.hosts.get(id);
    if (!h) throw new PanelHttpError(404, 'not-found', `No host with id ${id}.`);
    res.json({ data: hostJson(h) });
  });
  r.get('/hosts/:hostId/system', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), param(req, 'hostId'), 'system info', {}));
  });
  r.post('/hosts/:hostId/ping', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), param(req, 'hostId'), 'ping', {}));
  });
  return r;
}
