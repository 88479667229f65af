import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { PanelContext } from '../context.ts';
import { renderPage } from '../http/render.ts';
import { setFlash } from '../http/flash.ts';
import { panelSecret } from './panel-secret.ts';
import { clearPending, readPending } from './pending-sign-in.ts';
import { NO_RP_MESSAGE, relyingParty } from './webauthn-rp.ts';
import { TwoFactorError } from './two-factor.ts';
import type { UserRow } from './users.ts';

const WINDOW_MS = 15 * 60_000;
/** Wrong second factors allowed per account and per client address in 15 minutes. */
export const SECOND_FACTOR_LIMITS = { perUser: 5, perAddress: 10, windowMinutes: WINDOW_MS / 60_000 };

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The second step of signing in (after the password, server/auth/login.ts): a TOTP code, a
 * recovery code (each works once) or a passkey/security key. Throttled like the password: wrong
 * second factors count per account (whoever knows its password, from wherever) and per address,
 * and every failure is audited.
 */
export function secondFactorRoutes(
  ctx: PanelContext,
  d: {
    signIn(req: Request, res: Response, userId: number): void;
    formToken(req: Request, res: Response): void;
    safeNext(v: unknown): string;
  },
): Router {
  const r = Router();
  const tf = ctx.twoFactor;
  const key = panelSecret(ctx.db, 'pending-2fa');
  const pendingUser = (req: Request): UserRow | null => {
    const id = readPending(req, key, (i) => ctx.accounts.users.get(i));
    return id === null ? null : ctx.accounts.users.get(id);
  };
  const page = (req: Request, res: Response, user: UserRow, next: string, error: string | null): void => {
    d.formToken(req, res);
    const s = tf.status(user.id);
    renderPage(req, res, 'login-2fa', {
      title: 'Two-factor sign-in',
      next,
      username: user.username,
      hasTotp: s.totp,
      hasKeys: s.credentials.length > 0,
      passkeyProblem: relyingParty(ctx.config, ctx.publicUrl(), req) ? null : NO_RP_MESSAGE,
      error,
    });
  };
  const json = (req: Request): boolean => (req.get('content-type') ?? '').startsWith('application/json');
  const refuse = (req: Request, res: Response): void => {
    const user = pendingUser(req);
    if (user)
      ctx.audit.write({
        actor: { kind: 'user', name: user.username, role: 'viewer' },
        hostId: null,
        action: 'login',
        params: null,
        ok: false,
        errorCode: 'rate-limited',
        message: 'too many wrong second factors',
      });
    const msg = `Too many wrong codes. Wait ${SECOND_FACTOR_LIMITS.windowMinutes} minutes and try again.`;
    res.status(429);
    if (json(req) || !user) {
      res.json({ error: { code: 'rate-limited', message: msg } });
      return;
    }
    page(req, res, user, d.safeNext((req.body as Record<string, unknown> | undefined)?.next), msg);
  };
  const common = {
    windowMs: WINDOW_MS,
    standardHeaders: 'draft-8' as const,
    legacyHeaders: false,
    skipSuccessfulRequests: true,
    handler: refuse,
  };
  const limits: RequestHandler[] = [
    rateLimit({
      ...common,
      limit: SECOND_FACTOR_LIMITS.perUser,
      keyGenerator: (req) => `2fa-user:${readPending(req, key, (i) => ctx.accounts.users.get(i)) ?? 'none'}`,
    }),
    rateLimit({ ...common, limit: SECOND_FACTOR_LIMITS.perAddress }),
  ];
  const failed = (user: UserRow, message: string): void => {
    ctx.audit.write({
      actor: { kind: 'user', name: user.username, role: user.role, userId: user.id },
      hostId: null,
      action: 'login',
      params: null,
      ok: false,
      errorCode: 'unauthenticated',
      message,
    });
  };
  const finish = (req: Request, res: Response, user: UserRow, how: string): void => {
    clearPending(res);
    d.signIn(req, res, user.id);
    ctx.accounts.clearSetupToken();
    ctx.audit.write({
      actor: { kind: 'user', name: user.username, role: user.role, userId: user.id },
      hostId: null,
      action: 'login',
      params: null,
      ok: true,
      message: `second factor: ${how}`,
    });
  };

  r.get('/login/two-factor', (req, res) => {
    const user = pendingUser(req);
    if (!user) {
      res.redirect(303, '/login');
      return;
    }
    page(req, res, user, d.safeNext(req.query.next), null);
  });

  r.post('/login/two-factor', ...limits, (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = d.safeNext(body.next);
    const user = pendingUser(req);
    if (!user) {
      setFlash(req, 'warning', 'The sign-in took too long; enter your password again.');
      res.redirect(303, '/login');
      return;
    }
    const code = str(body.code).trim().slice(0, 64);
    let how: string | null = null;
    if (/^\d{6}$/.test(code)) {
      if (tf.verifyTotp(user.id, code)) how = 'authenticator code';
    } else if (code !== '' && tf.useRecoveryCode(user.id, code)) how = 'recovery code';
    if (!how) {
      failed(user, 'wrong second factor');
      res.status(401);
      page(req, res, user, next, 'That code is not right (or was already used).');
      return;
    }
    finish(req, res, user, how);
    if (how === 'recovery code') {
      const left = tf.status(user.id).recoveryLeft;
      setFlash(
        req,
        'warning',
        `You signed in with a recovery code; ${left} left. Make new ones on the Two-factor page if you are running out.`,
      );
    }
    const u = ctx.accounts.users.get(user.id);
    res.redirect(303, u?.must_change_password === 1 ? '/account/password' : next);
  });

  const jsonBody = express.json({ limit: '64kb' });
  r.post('/login/two-factor/passkey/options', jsonBody, (async (req, res) => {
    const user = pendingUser(req);
    const rp = relyingParty(ctx.config, ctx.publicUrl(), req);
    if (!user || !rp) {
      res.status(user ? 400 : 401).json({
        error: { code: 'failed-precondition', message: user ? NO_RP_MESSAGE : 'Enter your password again.' },
      });
      return;
    }
    try {
      res.json({ options: await tf.authenticationOptions(user.id, rp) });
    } catch (e) {
      if (!(e instanceof TwoFactorError)) throw e;
      res.status(400).json({ error: { code: 'failed-precondition', message: e.message } });
    }
  }) as RequestHandler);

  r.post('/login/two-factor/passkey', jsonBody, ...limits, (async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const user = pendingUser(req);
    const rp = relyingParty(ctx.config, ctx.publicUrl(), req);
    if (!user || !rp) {
      res.status(401).json({ error: { code: 'unauthenticated', message: 'Enter your password again.' } });
      return;
    }
    if (!(await tf.verifyAuthentication(user.id, rp, body.response))) {
      failed(user, 'passkey refused');
      res.status(401).json({ error: { code: 'unauthenticated', message: 'The passkey was not accepted.' } });
      return;
    }
    finish(req, res, user, 'passkey');
    const u = ctx.accounts.users.get(user.id);
    res.json({ redirect: u?.must_change_password === 1 ? '/account/password' : d.safeNext(body.next) });
  }) as RequestHandler);
  return r;
}
