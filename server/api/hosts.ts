import { Router } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { requireWholeFleet } from '../auth/host-guard.ts';
import { sendReply } from './reply.ts';
import { PanelHttpError } from '../http/errors.ts';
import { param } from '../http/params.ts';
import type { HostView } from '../hosts/registry.ts';
import { EnrollmentError, type Enrollment, type NewHost } from '../hosts/enrollment.ts';

export const hostJson = (h: HostView, labels: Record<string, string> = {}) => ({
  id: h.id,
  name: h.name,
  /** Who opens the link; a reverse host has no address or port (its agent dials the panel). */
  mode: h.mode,
  address: h.mode === 'reverse' ? null : h.address,
  port: h.mode === 'reverse' ? null : h.port,
  status: h.status,
  certificate: h.cert_serial ? { serial: h.cert_serial, notAfter: h.cert_not_after } : null,
  createdAt: h.created_at,
  enrolledAt: h.enrolled_at,
  labels,
  connection: h.connection
    ? {
        state: h.connection.state,
        lastSeen: h.connection.lastSeen,
        lastError: h.connection.lastError,
        agentVersion: h.connection.hello?.agentVersion ?? null,
        hostname: h.connection.hello?.hostname ?? null,
        // How the agent drives its host (system or sandbox), from its hello.
        adapter: h.connection.hello?.mode ?? null,
        modules: h.connection.hello?.modules ?? [],
      }
    : null,
});

const newHostJson = (n: NewHost, ctx: PanelContext) => {
  const h = ctx.hosts.get(n.host.id);
  return {
    host: h ? hostJson(h) : null,
    token: n.token,
    tokenExpiresAt: n.expiresAt,
    caPin: n.caPin,
    command: n.command,
    installCommand: n.installCommand,
  };
};

/** Runs a lifecycle operation, turning its refusals into API errors. */
async function lifecycle<T>(ctx: PanelContext, fn: (e: Enrollment) => T | Promise<T>): Promise<T> {
  if (!ctx.enrollment)
    throw new PanelHttpError(501, 'unsupported', 'Enrollment is not set up in this panel.');
  try {
    return await fn(ctx.enrollment);
  } catch (e) {
    if (e instanceof EnrollmentError) throw new PanelHttpError(e.status, e.code, e.message);
    throw e;
  }
}

/** /api/v1/hosts: list, add (with join token), one host, remove, re-issue token, renew; panel certificate rotation. */
export function hostsApi(ctx: PanelContext): Router {
  const r = Router();
  r.post(
    '/hosts',
    requireRole('operator'),
    requireWholeFleet(ctx.scopes, 'adding a host'),
    async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const n = await lifecycle(ctx, (e) =>
        e.addHost(actorOf(req), { name: body.name, address: body.address, port: body.port, mode: body.mode }),
      );
      res.status(201).json({ data: newHostJson(n, ctx) });
    },
  );
  r.delete('/hosts/:hostId', requireRole('operator'), async (req, res) => {
    const h = await lifecycle(ctx, (e) => e.removeHost(actorOf(req), param(req, 'hostId')));
    res.json({ data: { id: h.id, name: h.name, removed: true } });
  });
  r.post('/hosts/:hostId/token', requireRole('operator'), async (req, res) => {
    const n = await lifecycle(ctx, (e) => e.issueToken(actorOf(req), param(req, 'hostId')));
    res.status(201).json({ data: newHostJson(n, ctx) });
  });
  r.delete('/hosts/:hostId/token', requireRole('operator'), async (req, res) => {
    const revoked = await lifecycle(ctx, (e) => e.revokeTokens(actorOf(req), param(req, 'hostId')));
    res.json({ data: { revoked } });
  });
  r.post('/hosts/:hostId/certificate/renew', requireRole('operator'), async (req, res) => {
    const id = param(req, 'hostId');
    if (!ctx.hosts.get(id)) throw new PanelHttpError(404, 'not-found', `No host with id ${id}.`);
    const out = await lifecycle(ctx, (e) => e.renewHost(actorOf(req), id));
    if (!out.ok) throw new PanelHttpError(409, 'failed-precondition', out.message);
    res.json({ data: { serial: out.serial, notAfter: out.notAfter } });
  });
  r.put('/hosts/:hostId/mode', requireRole('operator'), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const sw = await lifecycle(ctx, (e) =>
      e.switchMode(actorOf(req), param(req, 'hostId'), {
        mode: body.mode,
        address: body.address,
        port: body.port,
      }),
    );
    res.set('cache-control', 'no-store'); // the join token is in this reply only
    const h = ctx.hosts.get(sw.host.id);
    res.json({
      data: {
        host: h ? hostJson(h, ctx.labels.get(h.id)) : null,
        previous: sw.previous,
        steps: sw.steps,
        token: sw.token,
        tokenExpiresAt: sw.expiresAt,
        caPin: sw.caPin,
        command: sw.command,
      },
    });
  });
  r.post('/panel/certificate/rotate', requireRole('admin'), async (req, res) => {
    const out = await lifecycle(ctx, (e) => e.rotatePanelCertificate(actorOf(req)));
    res.json({ data: out });
  });
  r.get('/hosts', requireRole('viewer'), (req, res) => {
    const labels = ctx.labels.all();
    const hosts = ctx.scopes.filter(actorOf(req), ctx.hosts.list(), (h) => h.id);
    res.json({ data: hosts.map((h) => hostJson(h, labels.get(h.id))) });
  });
  r.get('/hosts/:hostId', requireRole('viewer'), (req, res) => {
    const id = param(req, 'hostId');
    const h = ctx.hosts.get(id);
    if (!h) throw new PanelHttpError(404, 'not-found', `No host with id ${id}.`);
    res.json({ data: hostJson(h, ctx.labels.get(id)) });
  });
  r.get('/hosts/:hostId/system', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), param(req, 'hostId'), 'system info', {}));
  });
  r.post('/hosts/:hostId/ping', requireRole('viewer'), async (req, res) => {
    sendReply(res, await ctx.actions.call(actorOf(req), param(req, 'hostId'), 'ping', {}));
  });
  return r;
}
