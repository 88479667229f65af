import { Router, type Request, type Response } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { requireWholeFleet } from '../auth/host-guard.ts';
import { EnrollmentError, type NewHost } from '../hosts/enrollment.ts';
import { PanelHttpError } from './errors.ts';
import { hostIdParam } from './params.ts';
import { renderPage } from './render.ts';
import { setFlash } from './flash.ts';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The "Add host" wizard, new join tokens for pending hosts, switching a host's link mode, removing a host. */
export function hostsAdminPages(ctx: PanelContext): Router {
  const r = Router();
  const enrollment = () => {
    if (!ctx.enrollment)
      throw new PanelHttpError(501, 'unsupported', 'Host enrollment is not available in this panel.');
    return ctx.enrollment;
  };
  const wizard = (req: Request, res: Response, extra: Record<string, unknown>): void => {
    renderPage(req, res, 'hosts/new', {
      title: 'Add host',
      form: { name: '', address: '', port: '7443', reverse: false },
      created: null,
      error: null,
      caPin: ctx.pki.caFingerprint(),
      publicUrl: ctx.publicUrl(),
      ...extra,
    });
  };
  const showCommand = (req: Request, res: Response, n: NewHost): void => {
    // The join token is in this response only (never in the flash or the session).
    res.set('cache-control', 'no-store');
    wizard(req, res, {
      created: {
        id: n.host.id,
        name: n.host.name,
        command: n.command,
        installCommand: n.installCommand,
        expiresAt: n.expiresAt,
      },
    });
  };

  const wholeFleet = requireWholeFleet(ctx.scopes, 'adding a host');
  r.get('/hosts/new', requireRole('operator'), wholeFleet, (req, res) => {
    wizard(req, res, {});
  });
  r.post('/hosts/new', requireRole('operator'), wholeFleet, (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const form = {
      name: str(b.name).slice(0, 200),
      address: str(b.address).slice(0, 300),
      port: str(b.port).slice(0, 10),
      reverse: b.reverse === '1',
    };
    try {
      const n = enrollment().addHost(
        actorOf(req),
        form.reverse
          ? { name: b.name, address: b.address, mode: 'reverse' }
          : { name: b.name, address: b.address, port: b.port || undefined },
      );
      ctx.events.emit('hostsChanged');
      showCommand(req, res, n);
    } catch (e) {
      if (!(e instanceof EnrollmentError)) throw e;
      res.status(e.status);
      wizard(req, res, { form, error: e.message });
    }
  });
  r.post('/hosts/:hostId/token', requireRole('operator'), (req, res) => {
    try {
      showCommand(req, res, enrollment().issueToken(actorOf(req), hostIdParam(req)));
    } catch (e) {
      if (!(e instanceof EnrollmentError)) throw e;
      setFlash(req, 'danger', e.message);
      res.redirect(303, `/hosts/${encodeURIComponent(hostIdParam(req))}`);
    }
  });
  r.post('/hosts/:hostId/certificate/renew', requireRole('operator'), async (req, res) => {
    const hostId = hostIdParam(req);
    const back = `/hosts/${encodeURIComponent(hostId)}`;
    try {
      const out = await enrollment().renewHost(actorOf(req), hostId);
      setFlash(
        req,
        out.ok ? 'success' : 'danger',
        out.ok
          ? `New certificate ${out.serial} installed on the host without a disconnection; the old one is revoked.`
          : out.message,
      );
    } catch (e) {
      if (!(e instanceof EnrollmentError)) throw e;
      setFlash(req, 'danger', e.message);
    }
    res.redirect(303, back);
  });
  r.post('/hosts/:hostId/mode', requireRole('operator'), (req, res) => {
    const hostId = hostIdParam(req);
    const b = (req.body ?? {}) as Record<string, unknown>;
    try {
      const sw = enrollment().switchMode(actorOf(req), hostId, { mode: b.mode, address: b.address });
      // The join token is in this response only (never in the flash or the session).
      res.set('cache-control', 'no-store');
      renderPage(req, res, 'hosts/mode', {
        title: `${sw.host.name}: link mode`,
        host: sw.host,
        steps: sw.steps,
        command: sw.command,
        expiresAt: sw.expiresAt,
      });
    } catch (e) {
      if (!(e instanceof EnrollmentError)) throw e;
      setFlash(req, 'danger', e.message);
      res.redirect(303, `/hosts/${encodeURIComponent(hostId)}`);
    }
  });
  r.post('/settings/panel-certificate/rotate', requireRole('admin'), async (req, res) => {
    try {
      const out = await enrollment().rotatePanelCertificate(actorOf(req));
      setFlash(
        req,
        'success',
        `The panel now connects with certificate ${out.newSerial}; ${out.oldSerial} is revoked and every agent was told.`,
      );
    } catch (e) {
      if (!(e instanceof EnrollmentError)) throw e;
      setFlash(req, 'danger', e.message);
    }
    res.redirect(303, '/settings');
  });
  r.post('/hosts/:hostId/remove', requireRole('operator'), (req, res) => {
    const hostId = hostIdParam(req);
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (b.confirm !== 'yes') {
      setFlash(req, 'danger', 'Tick the confirmation box to remove the host.');
      res.redirect(303, `/hosts/${encodeURIComponent(hostId)}`);
      return;
    }
    try {
      const row = enrollment().removeHost(actorOf(req), hostId);
      ctx.events.emit('hostsChanged');
      setFlash(req, 'success', `Host ${row.name} removed; its certificate is revoked.`);
      res.redirect(303, '/');
    } catch (e) {
      if (!(e instanceof EnrollmentError)) throw e;
      setFlash(req, 'danger', e.message);
      res.redirect(303, `/hosts/${encodeURIComponent(hostId)}`);
    }
  });
  return r;
}
