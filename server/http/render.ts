import type { Request, Response } from 'express';
import { roleAtLeast } from '../auth/roles.ts';
import { takeFlash } from './flash.ts';

/** Locals every dashboard page gets: who is signed in, the CSRF token, queued messages. */
export function pageLocals(req: Request): Record<string, unknown> {
  const actor = req.actor ? { name: req.actor.name, role: req.actor.role } : null;
  return {
    actor,
    canWrite: req.actor ? roleAtLeast(req.actor.role, 'operator') : false,
    isAdmin: req.actor?.role === 'admin',
    csrfToken: req.session?.data.csrf ?? req.preloginCsrf ?? '',
    path: req.path,
    // A page rendered as a POST result (e.g. a generated password shown once) is never re-rendered live.
    liveRefresh: req.method === 'GET',
  };
}

/** Renders a dashboard page with the common locals (flash messages are taken here). */
export function renderPage(
  req: Request,
  res: Response,
  view: string,
  locals: Record<string, unknown> = {},
): void {
  // A live-region refresh (public/app.ts) is not a page view: it leaves the flash messages for
  // the page the browser is about to show (a refresh racing a form's redirect used to eat them).
  const refresh = req.get('x-ponio-refresh') === '1';
  res.render(view, { ...pageLocals(req), flash: refresh ? [] : takeFlash(req), ...locals });
}
