import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { verifyPassword } from '../auth/passwords.ts';
import { passwordChangeLimits, wrongCurrentPassword } from '../auth/password-limits.ts';
import { TwoFactorError } from '../auth/two-factor.ts';
import { NO_RP_MESSAGE, relyingParty } from '../auth/webauthn-rp.ts';
import { parseUserId, resetTwoFactor, setTwoFactorRequirement } from '../auth/admin-ops.ts';
import { UserInputError, type UserRow } from '../auth/users.ts';
import { PanelHttpError } from './errors.ts';
import { param } from './params.ts';
import { renderPage } from './render.ts';
import { setFlash } from './flash.ts';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const form = (req: Request): Record<string, unknown> => (req.body ?? {}) as Record<string, unknown>;
const PAGE = '/account/two-factor';
/** Adding a factor needs a sign-in this recent: a stolen old session cannot plant its own factor. */
export const RECENT_SIGN_IN_MS = 15 * 60_000;
const STALE_SIGN_IN =
  'For your safety, adding a second factor needs a recent sign-in: sign out, sign in again and add it within 15 minutes.';
const recentSignIn = (req: Request): boolean => {
  const at = req.session?.data.authAt ?? null;
  return at !== null && Date.now() - at <= RECENT_SIGN_IN_MS;
};

/**
 * /account/two-factor: each user enrols and removes their own second factors (authenticator
 * app, passkeys and security keys, recovery codes); removing one or making new recovery codes
 * asks for the password (throttled like the password change). Admins: reset a user's factors
 * (Users page) and the "require two-factor" setting (Settings page).
 */
export function twoFactorPages(ctx: PanelContext): Router {
  const r = Router();
  const tf = ctx.twoFactor;
  const me = (req: Request): UserRow => {
    const u = ctx.accounts.users.get(actorOf(req).userId ?? 0);
    if (!u)
      throw new PanelHttpError(403, 'permission-denied', 'Only a signed-in user has two-factor settings.');
    return u;
  };
  const audit = (req: Request, action: string, params: unknown, ok = true, message: string | null = null) =>
    ctx.audit.write({ actor: actorOf(req), hostId: null, action, params, ok, message });
  const page = (req: Request, res: Response, extra: Record<string, unknown> = {}): void => {
    const u = me(req);
    res.set('cache-control', 'no-store');
    renderPage(req, res, 'account-2fa', {
      title: 'Two-factor sign-in',
      status: tf.status(u.id),
      forced: tf.mustEnroll(u),
      passkeyProblem: relyingParty(ctx.config, ctx.publicUrl(), req) ? null : NO_RP_MESSAGE,
      setup: null,
      recoveryCodes: null,
      error: null,
      ...extra,
    });
  };
  /** Whether removing this factor would leave a user whom the panel requires to have one without. */
  const lastRequired = (u: UserRow, removing: 'totp' | 'key'): boolean => {
    if (!tf.required(u)) return false;
    const s = tf.status(u.id);
    const left =
      (s.totp && removing !== 'totp' ? 1 : 0) + s.credentials.length - (removing === 'key' ? 1 : 0);
    return left <= 0;
  };
  /** The password check of a removal: counted by passwordChangeLimits when wrong. */
  const passwordOk = async (req: Request, res: Response, u: UserRow, action: string): Promise<boolean> => {
    if (await verifyPassword(str(form(req).password).slice(0, 1024), u.password_hash)) return true;
    wrongCurrentPassword(res);
    audit(req, action, { username: u.username }, false, 'wrong current password');
    res.status(400);
    page(req, res, { error: 'The password is wrong.' });
    return false;
  };
  const limits = passwordChangeLimits(ctx);

  r.get(PAGE, requireRole('viewer'), (req, res) => page(req, res));

  r.post(`${PAGE}/totp`, requireRole('viewer'), (async (req, res) => {
    const u = me(req);
    if (tf.status(u.id).totp) {
      setFlash(req, 'info', 'An authenticator app is already set up; turn it off first to replace it.');
      res.redirect(303, PAGE);
      return;
    }
    if (!recentSignIn(req)) {
      res.status(403);
      page(req, res, { error: STALE_SIGN_IN });
      return;
    }
    // The key is shown in this reply only; a reload shows nothing (start again).
    page(req, res, { setup: await tf.startTotp(u) });
  }) as RequestHandler);

  r.post(`${PAGE}/totp/confirm`, requireRole('viewer'), (req, res) => {
    const u = me(req);
    try {
      const out = tf.confirmTotp(u.id, str(form(req).code).slice(0, 16));
      audit(req, '2fa totp enrol', { username: u.username });
      if (out.recoveryCodes) page(req, res, { recoveryCodes: out.recoveryCodes });
      else {
        setFlash(req, 'success', 'The authenticator app is on.');
        res.redirect(303, PAGE);
      }
    } catch (e) {
      if (!(e instanceof TwoFactorError)) throw e;
      res.status(400);
      page(req, res, { error: e.message });
    }
  });

  r.post(`${PAGE}/totp/remove`, requireRole('viewer'), ...limits, (async (req, res) => {
    const u = me(req);
    if (!(await passwordOk(req, res, u, '2fa totp remove'))) return;
    if (lastRequired(u, 'totp')) {
      res.status(409);
      page(req, res, {
        error: 'Two-factor sign-in is required for your account: add a passkey before turning this off.',
      });
      return;
    }
    tf.removeTotp(u.id);
    audit(req, '2fa totp remove', { username: u.username });
    setFlash(req, 'success', 'The authenticator app is off.');
    res.redirect(303, PAGE);
  }) as RequestHandler);

  r.post(`${PAGE}/recovery`, requireRole('viewer'), ...limits, (async (req, res) => {
    const u = me(req);
    if (!tf.hasFactor(u.id))
      throw new PanelHttpError(409, 'failed-precondition', 'Set up a second factor first.');
    if (!(await passwordOk(req, res, u, '2fa recovery codes'))) return;
    const codes = tf.newRecoveryCodes(u.id);
    audit(req, '2fa recovery codes', { username: u.username });
    page(req, res, { recoveryCodes: codes });
  }) as RequestHandler);

  const jsonBody = express.json({ limit: '64kb' });
  const rpOf = (req: Request) => {
    const rp = relyingParty(ctx.config, ctx.publicUrl(), req);
    if (!rp) throw new PanelHttpError(400, 'failed-precondition', NO_RP_MESSAGE);
    return rp;
  };
  r.post(`${PAGE}/passkeys/options`, requireRole('viewer'), jsonBody, (async (req, res) => {
    res.set('cache-control', 'no-store');
    if (!recentSignIn(req)) {
      res.status(403).json({ error: { code: 'permission-denied', message: STALE_SIGN_IN } });
      return;
    }
    res.json({ options: await tf.registrationOptions(me(req), rpOf(req)) });
  }) as RequestHandler);
  r.post(`${PAGE}/passkeys`, requireRole('viewer'), jsonBody, (async (req, res) => {
    const u = me(req);
    const body = form(req);
    if (!recentSignIn(req)) {
      res.status(403).json({ error: { code: 'permission-denied', message: STALE_SIGN_IN } });
      return;
    }
    const name = str(body.name).trim();
    if (!/^[\p{L}\p{N} ._@'-]{1,64}$/u.test(name)) {
      res.status(400).json({
        error: {
          code: 'invalid-argument',
          message: "Name the key with 1–64 letters, digits, spaces or . _ @ ' -.",
        },
      });
      return;
    }
    try {
      await tf.verifyRegistration(u.id, rpOf(req), body.response, name);
    } catch (e) {
      if (!(e instanceof TwoFactorError)) throw e;
      res.status(400).json({ error: { code: 'invalid-argument', message: e.message } });
      return;
    }
    const first = tf.status(u.id).recoveryLeft === 0;
    audit(req, '2fa passkey add', { username: u.username, name });
    setFlash(
      req,
      'success',
      `Passkey "${name}" added.${first ? ' Make recovery codes below, in case you lose it.' : ''}`,
    );
    res.json({ ok: true });
  }) as RequestHandler);
  r.post(`${PAGE}/passkeys/:id/remove`, requireRole('viewer'), ...limits, (async (req, res) => {
    const u = me(req);
    const id = Number(param(req, 'id'));
    if (!Number.isSafeInteger(id) || id <= 0)
      throw new PanelHttpError(400, 'invalid-argument', 'No such passkey.');
    if (!tf.status(u.id).credentials.some((c) => c.id === id))
      throw new PanelHttpError(404, 'not-found', 'No such passkey.');
    if (!(await passwordOk(req, res, u, '2fa passkey remove'))) return;
    if (lastRequired(u, 'key')) {
      res.status(409);
      page(req, res, {
        error:
          'Two-factor sign-in is required for your account: add another factor before removing this one.',
      });
      return;
    }
    const row = tf.removeCredential(u.id, id);
    audit(req, '2fa passkey remove', { username: u.username, name: row?.name ?? null });
    setFlash(req, 'success', `Passkey "${row?.name ?? id}" removed.`);
    res.redirect(303, PAGE);
  }) as RequestHandler);

  // --- admin ---------------------------------------------------------------------------------
  r.post('/users/:id/two-factor/reset', requireRole('admin'), (req, res) => {
    try {
      setFlash(req, 'success', resetTwoFactor(ctx, actorOf(req), parseUserId(param(req, 'id'))));
    } catch (e) {
      if (!(e instanceof UserInputError)) throw e;
      setFlash(req, 'danger', e.message);
    }
    res.redirect(303, '/users');
  });
  r.post('/settings/two-factor', requireRole('admin'), (req, res) => {
    try {
      const v = setTwoFactorRequirement(ctx, actorOf(req), form(req).require);
      setFlash(
        req,
        'success',
        v === 'off'
          ? 'Two-factor sign-in is optional.'
          : `Two-factor sign-in is required for ${v === 'admins' ? 'admins' : 'everyone'}; who has none sets it up at the next sign-in.`,
      );
    } catch (e) {
      if (!(e instanceof UserInputError)) throw e;
      setFlash(req, 'danger', e.message);
    }
    res.redirect(303, '/settings');
  });
  return r;
}
