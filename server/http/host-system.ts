import { Router } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { hostIdParam } from './params.ts';
import { renderTab, moduleStatusOf } from './host-page.ts';
import { PanelHttpError } from './errors.ts';
import { setFlash } from './flash.ts';

/** The host page's System tab (/hosts/:hostId): facts, services, modules, certificate, ping. */
export function hostSystemPages(ctx: PanelContext): Router {
  const r = Router();
  r.get('/hosts/:hostId', requireRole('viewer'), async (req, res) => {
    const hostId = hostIdParam(req);
    const h = ctx.hosts.get(hostId);
    if (!h) throw new PanelHttpError(404, 'not-found', `No host with id ${hostId}.`);
    const online = h.connection?.state === 'online';
    const info = online
      ? await ctx.actions.call(actorOf(req), hostId, 'system info', {}, { timeoutMs: 8_000 })
      : null;
    const modules = ['websites', 'ftp', 'mysql', 'firewall', 'backups'].map((m) => ({
      name: m,
      ...moduleStatusOf(h, m),
    }));
    await renderTab(ctx, req, res, 'system', {
      info: info?.ok ? info.data : null,
      infoError: info && !info.ok ? info.error.message : null,
      modules,
      certificate: h.cert_serial ? { serial: h.cert_serial, notAfter: h.cert_not_after } : null,
    });
  });
  r.post('/hosts/:hostId/ping', requireRole('viewer'), async (req, res) => {
    const hostId = hostIdParam(req);
    const reply = await ctx.actions.call(actorOf(req), hostId, 'ping', {});
    setFlash(
      req,
      reply.ok ? 'success' : 'danger',
      reply.ok ? `The agent answered (version ${reply.data.agentVersion}).` : reply.error.message,
    );
    res.redirect(303, `/hosts/${encodeURIComponent(hostId)}`);
  });
  return r;
}
