import { Router } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { PONIO_VERSION, PROTOCOL_VERSION } from '../../shared/protocol/index.ts';
import { renderPage } from './render.ts';
import { setFlash } from './flash.ts';

/** Settings: how this panel is configured (config file / env / flags) and session housekeeping. */
export function settingsPages(ctx: PanelContext): Router {
  const r = Router();
  r.get('/settings', requireRole('viewer'), (req, res) => {
    const c = ctx.config;
    renderPage(req, res, 'settings', {
      title: 'Settings',
      panel: {
        version: PONIO_VERSION,
        protocol: PROTOCOL_VERSION,
        publicUrl: ctx.publicUrl(),
        listen: `${c.host}:${c.port}`,
        dataDir: c.dataDir,
        trustProxy: String(c.trustProxy),
        tls: c.tlsCert ? `your certificate (${c.tlsCert})` : 'issued by the panel CA',
        caFingerprint: ctx.pki.caFingerprint(),
        logLevel: c.logLevel,
      },
      requireTwoFactor: ctx.twoFactor.repo.requirement(),
    });
  });
  r.post('/settings/sessions/end-others', requireRole('viewer'), (req, res) => {
    const actor = actorOf(req);
    if (actor.userId !== undefined) ctx.accounts.endUserSessions(actor.userId, req.session);
    setFlash(req, 'success', 'Your other sessions are signed out.');
    res.redirect(303, '/settings');
  });
  return r;
}
