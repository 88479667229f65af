import { Router, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { PanelContext } from '../context.ts';
import type { Accounts } from './accounts.ts';
import { setSessionCookie, clearSessionCookie } from './sessions.ts';
import { PRELOGIN_COOKIE, preloginToken } from './prelogin-csrf.ts';
import { dummyHash, passwordProblem, verifyPassword } from './passwords.ts';
import { renderPage } from '../http/render.ts';
import { panelSecret, unknownUserLabel } from './panel-secret.ts';
import { setFlash } from '../http/flash.ts';
import { setPending } from './pending-sign-in.ts';
import { secondFactorRoutes } from './second-factor.ts';
import type { TwoFactor } from './two-factor.ts';

/** A local redirect target from ?next= (absolute paths on this panel only). */
export function safeNext(v: unknown): string {
  if (typeof v !== 'string' || !/^\/(?![/\\])[\x21-\x7e]*$/.test(v) || v.length > 500) return '/';
  if (v.startsWith('/login') || v.startsWith('/logout') || v.startsWith('/setup')) return '/';
  return v;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Login, logout and the one-time setup page (public routes of the dashboard). */
export function loginRoutes(ctx: PanelContext, accounts: Accounts): Router {
  const r = Router();
  // Pages before sign-in get a stateless CSRF token, not a session row (prelogin-csrf.ts).
  const preloginKey = panelSecret(ctx.db, 'prelogin-csrf');
  const pendingKey = panelSecret(ctx.db, 'pending-2fa');
  const formToken = (req: Request, res: Response): void => {
    if (!req.session) preloginToken(req, res, preloginKey);
  };
  /** The signed-in session for `userId`: a fresh id for an existing (anonymous) one, else a new one. */
  const signIn = (req: Request, res: Response, userId: number): void => {
    if (req.session) accounts.sessions.regenerate(req.session, userId);
    else req.session = accounts.sessions.create(userId);
    setSessionCookie(res, req.session);
    res.clearCookie(PRELOGIN_COOKIE, { httpOnly: true, secure: true, sameSite: 'lax', path: '/' });
  };
  const limiter = rateLimit({
    windowMs: 15 * 60_000,
    limit: 10,
    skipSuccessfulRequests: true,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (req: Request, res: Response) => {
      formToken(req, res);
      res.status(429);
      renderPage(req, res, 'login', {
        title: 'Sign in',
        next: safeNext((req.body as Record<string, unknown> | undefined)?.next),
        username: '',
        error: 'Too many failed sign-in attempts from your address. Wait 15 minutes and try again.',
      });
    },
  });

  const currentUser = (req: Request) => {
    const id = req.session?.data.userId;
    const u = id ? accounts.users.get(id) : null;
    return u && u.disabled === 0 ? u : null;
  };

  r.get('/login', (req, res) => {
    if (currentUser(req)) {
      res.redirect(303, safeNext(req.query.next));
      return;
    }
    formToken(req, res);
    renderPage(req, res, 'login', {
      title: 'Sign in',
      next: safeNext(req.query.next),
      username: '',
      error: null,
    });
  });

  r.post('/login', limiter, (async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const username = str(body.username).trim().toLowerCase();
    const password = str(body.password);
    const next = safeNext(body.next);
    const user = username.length <= 64 ? accounts.users.getByName(username) : null;
    // Always run scrypt once, so an unknown user takes as long as a wrong password.
    const ok = await verifyPassword(password.slice(0, 1024), user?.password_hash ?? (await dummyHash()));
    if (!user || !ok || user.disabled === 1) {
      formToken(req, res);
      ctx.audit.write({
        // Never what was typed for an unknown name (it is often a password in the wrong box).
        actor: {
          kind: 'user',
          name: user ? user.username : unknownUserLabel(ctx.db, username),
          role: 'viewer',
        },
        hostId: null,
        action: 'login',
        params: null,
        ok: false,
        errorCode: 'unauthenticated',
        message: user?.disabled === 1 && ok ? 'account disabled' : 'wrong username or password',
      });
      res.status(401);
      renderPage(req, res, 'login', {
        title: 'Sign in',
        next,
        username: username.slice(0, 64),
        error: user?.disabled === 1 && ok ? 'This account is disabled.' : 'Wrong username or password.',
      });
      return;
    }
    // A second factor enrolled: the password alone signs nobody in (server/auth/second-factor.ts).
    if (ctx.twoFactor.hasFactor(user.id)) {
      setPending(res, pendingKey, user);
      res.redirect(303, `/login/two-factor?next=${encodeURIComponent(next)}`);
      return;
    }
    signIn(req, res, user.id);
    accounts.clearSetupToken();
    ctx.audit.write({
      actor: { kind: 'user', name: user.username, role: user.role, userId: user.id },
      hostId: null,
      action: 'login',
      params: null,
      ok: true,
    });
    const enrol = ctx.twoFactor.mustEnroll(user) ? TWO_FACTOR_PAGE : next;
    res.redirect(303, user.must_change_password === 1 ? '/account/password' : enrol);
  }) as RequestHandler);
  r.use(secondFactorRoutes(ctx, { signIn, formToken, safeNext }));

  r.post('/logout', (req, res) => {
    const s = req.session;
    if (s) {
      const oldKey = s.key;
      accounts.sessions.regenerate(s, null);
      accounts.events.emit('sessionsEnded', [oldKey]);
      setSessionCookie(res, s);
      setFlash(req, 'info', 'You are signed out.');
    } else clearSessionCookie(res);
    res.redirect(303, '/login');
  });

  r.get('/setup', (req, res) => {
    const token = str(req.query.token);
    formToken(req, res);
    const valid = accounts.checkSetupToken(token);
    res.status(valid ? 200 : 410);
    renderPage(req, res, 'setup', { title: 'Set up PonIO', token: valid ? token : null, error: null });
  });

  r.post('/setup', limiter, (async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const token = str(body.token);
    formToken(req, res);
    if (!accounts.checkSetupToken(token)) {
      res.status(410);
      renderPage(req, res, 'setup', { title: 'Set up PonIO', token: null, error: null });
      return;
    }
    const pw = str(body.password);
    const problem = passwordProblem(pw) ?? (pw !== str(body.confirm) ? 'The two passwords differ.' : null);
    const admin = accounts.users.getByName('admin');
    if (problem || !admin) {
      res.status(400);
      renderPage(req, res, 'setup', {
        title: 'Set up PonIO',
        token,
        error: problem ?? 'The admin account no longer exists; use `ponio-panel user add`.',
      });
      return;
    }
    // Claimed before the first await: of several concurrent requests with the token, one wins.
    if (!accounts.claimSetupToken(token)) {
      res.status(410);
      renderPage(req, res, 'setup', { title: 'Set up PonIO', token: null, error: null });
      return;
    }
    await accounts.users.setPassword(admin.id, pw);
    accounts.endUserSessions(admin.id);
    signIn(req, res, admin.id);
    ctx.audit.write({
      actor: { kind: 'user', name: admin.username, role: 'admin', userId: admin.id },
      hostId: null,
      action: 'setup admin password',
      params: null,
      ok: true,
    });
    setFlash(req, 'success', 'Your password is set. Welcome to PonIO.');
    res.redirect(303, '/');
  }) as RequestHandler);

  return r;
}

/** Where a user whom the panel requires to use two-factor sign-in enrols (server/http/two-factor-page.ts). */
export const TWO_FACTOR_PAGE = '/account/two-factor';

/**
 * After the public routes: pages need a signed-in, enabled user (sets req.actor). A user who must
 * change their password, or must enrol a second factor (the admin's "require two-factor"
 * setting), gets only that page until they have.
 */
export function requireLogin(accounts: Accounts, twoFactor: Pick<TwoFactor, 'mustEnroll'>): RequestHandler {
  return (req, res, next) => {
    const id = req.session?.data.userId ?? null;
    const user = id !== null ? accounts.users.get(id) : null;
    if (!user || user.disabled === 1) {
      if (req.session && id !== null) accounts.sessions.destroy(req.session);
      if (req.method === 'GET' || req.method === 'HEAD') {
        res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
        return;
      }
      res.status(401).type('text/plain').send('Your session has ended. Sign in again.');
      return;
    }
    req.actor = { kind: 'user', name: user.username, role: user.role, userId: user.id };
    // Signed-in pages hold account data: never kept by the browser or a proxy cache.
    res.set('cache-control', 'no-store');
    if (user.must_change_password === 1 && !req.path.startsWith('/account/password')) {
      res.redirect(303, '/account/password');
      return;
    }
    if (
      user.must_change_password === 0 &&
      !req.path.startsWith(TWO_FACTOR_PAGE) &&
      twoFactor.mustEnroll(user)
    ) {
      if (req.method === 'GET' || req.method === 'HEAD') res.redirect(303, TWO_FACTOR_PAGE);
      else
        res
          .status(403)
          .type('text/plain')
          .send('Two-factor sign-in is required for your account: set it up first on /account/two-factor.');
      return;
    }
    next();
  };
}
