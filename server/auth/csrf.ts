import type { RequestHandler } from 'express';
import { PanelHttpError } from '../http/errors.ts';
import { checkPreloginToken } from './prelogin-csrf.ts';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Synchronizer-token CSRF protection for the dashboard: every state-changing request must carry
 * the session's random token, as the form field `_csrf` or the `X-CSRF-Token` header (fetch).
 * The token lives server-side in the session (never in a cookie an attacker could plant), is
 * compared in constant time and rotates on login/logout. SameSite=Lax on the session cookie is a
 * second layer, not the protection. The REST API is not affected: it authenticates with bearer
 * tokens, which a browser never sends on its own.
 */
export function csrfProtection(preloginKey: Buffer): RequestHandler {
  return (req, _res, next) => {
    if (SAFE.has(req.method)) {
      next();
      return;
    }
    // Signing out of a session that already ended has nothing to protect: just go to the login page.
    if (req.path === '/logout' && (!req.session || req.session.data.userId === null)) {
      next();
      return;
    }
    const body = req.body as Record<string, unknown> | undefined;
    const token: unknown = body?._csrf ?? req.get('x-csrf-token');
    // No session yet (sign-in, setup): the stateless pre-login token (prelogin-csrf.ts).
    const ok = req.session ? req.session.checkCsrf(token) : checkPreloginToken(req, preloginKey, token);
    if (!ok) {
      next(
        new PanelHttpError(
          403,
          'csrf',
          'The form was refused: its security token is missing or out of date (CSRF). Reload the page and try again.',
        ),
      );
      return;
    }
    if (body && typeof body === 'object') delete body._csrf;
    next();
  };
}
