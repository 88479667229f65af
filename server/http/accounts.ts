import { Router, type Request, type Response } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { UserInputError, userView } from '../auth/users.ts';
import { verifyPassword, passwordProblem } from '../auth/passwords.ts';
import {
  addUser,
  createToken,
  deleteUser,
  parseUserId,
  resetPassword,
  revokeToken,
  setGrants,
  tokenView,
  updateUser,
} from '../auth/admin-ops.ts';
import { ROLES } from '../auth/roles.ts';
import { describeGrants, parseGrantText } from '../auth/scope.ts';
import { param } from './params.ts';
import { renderPage } from './render.ts';
import { setFlash } from './flash.ts';
import { setSessionCookie } from '../auth/sessions.ts';
import { passwordChangeLimits, wrongCurrentPassword } from '../auth/password-limits.ts';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const form = (req: Request): Record<string, unknown> => (req.body ?? {}) as Record<string, unknown>;

/** Runs a form action: UserInputError → flash danger; success → flash; always 303 back. */
async function act(
  req: Request,
  res: Response,
  back: string,
  fn: () => Promise<string> | string,
): Promise<void> {
  try {
    setFlash(req, 'success', await fn());
  } catch (e) {
    if (!(e instanceof UserInputError)) throw e;
    setFlash(req, 'danger', e.message);
  }
  res.redirect(303, back);
}

/** Users (admin), API tokens (admin) and the signed-in user's own password. */
export function accountPages(ctx: PanelContext): Router {
  const r = Router();
  const { accounts } = ctx;

  r.get('/users', requireRole('admin'), (req, res) => {
    renderPage(req, res, 'users', {
      title: 'Users',
      users: accounts.users.list().map((u) => {
        const grants = accounts.grants.of(u.id);
        return {
          ...userView(u),
          grantsText: grants.length === 0 ? `${u.role} on all hosts` : describeGrants(grants),
          grantsInput: grants.map((g) => `${g.role}:${g.selector ?? '*'}`).join('\n'),
          twoFactor: ctx.twoFactor.hasFactor(u.id),
        };
      }),
      roles: ROLES,
      me: actorOf(req).userId ?? null,
    });
  });
  r.post('/users', requireRole('admin'), async (req, res) => {
    const b = form(req);
    await act(req, res, '/users', async () => {
      const u = await addUser(ctx, actorOf(req), {
        username: b.username,
        password: b.password,
        role: b.role,
        mustChangePassword: true,
      });
      return `User ${u.username} created (${u.role}); they choose their own password at the first sign-in.`;
    });
  });
  r.post('/users/:id/role', requireRole('admin'), async (req, res) => {
    await act(req, res, '/users', () => {
      const u = updateUser(ctx, actorOf(req), parseUserId(param(req, 'id')), { role: form(req).role });
      return `${u.username} is now ${u.role}.`;
    });
  });
  r.post('/users/:id/grants', requireRole('admin'), async (req, res) => {
    await act(req, res, '/users', () => {
      const id = parseUserId(param(req, 'id'));
      const parsed = parseGrantText(str(form(req).grants));
      if (!parsed.ok) throw new UserInputError(parsed.message);
      const grants = setGrants(ctx, actorOf(req), id, parsed.value);
      return `${accounts.users.get(id)?.username ?? 'The user'} now has: ${grants.length === 0 ? 'their role on all hosts' : describeGrants(grants)}.`;
    });
  });
  r.post('/users/:id/disable', requireRole('admin'), async (req, res) => {
    await act(req, res, '/users', () => {
      const u = updateUser(ctx, actorOf(req), parseUserId(param(req, 'id')), { disabled: true });
      return `${u.username} is disabled and signed out.`;
    });
  });
  r.post('/users/:id/enable', requireRole('admin'), async (req, res) => {
    await act(req, res, '/users', () => {
      const u = updateUser(ctx, actorOf(req), parseUserId(param(req, 'id')), { disabled: false });
      return `${u.username} is enabled.`;
    });
  });
  r.post('/users/:id/password', requireRole('admin'), async (req, res) => {
    await act(req, res, '/users', async () => {
      const id = parseUserId(param(req, 'id'));
      await resetPassword(ctx, actorOf(req), id, form(req).password);
      return `Password reset; ${accounts.users.get(id)?.username ?? 'the user'} must choose a new one at the next sign-in.`;
    });
  });
  r.post('/users/:id/delete', requireRole('admin'), async (req, res) => {
    await act(req, res, '/users', () => {
      if (form(req).confirm !== 'yes')
        throw new UserInputError('Tick the confirmation box to delete a user.');
      const id = parseUserId(param(req, 'id'));
      const name = accounts.users.get(id)?.username ?? String(id);
      deleteUser(ctx, actorOf(req), id);
      return `User ${name} deleted.`;
    });
  });

  const tokensPage = (req: Request, res: Response, extra: Record<string, unknown> = {}): void => {
    const users = new Map(accounts.users.list().map((u) => [u.id, u.username]));
    renderPage(req, res, 'tokens', {
      title: 'API tokens',
      tokens: ctx.apiTokens.list().map((t) => ({
        ...tokenView(t),
        createdByName: t.created_by ? (users.get(t.created_by) ?? null) : null,
      })),
      roles: ROLES,
      created: null,
      ...extra,
    });
  };
  r.get('/tokens', requireRole('admin'), (req, res) => tokensPage(req, res));
  r.post('/tokens', requireRole('admin'), (req, res) => {
    const b = form(req);
    try {
      const { token, row } = createToken(ctx, actorOf(req), {
        name: b.name,
        role: b.role,
        expiresInDays: b.expiresInDays,
        selector: str(b.selector).trim(),
      });
      // Shown once, in this response only (never stored in the session or the flash).
      res.set('cache-control', 'no-store');
      tokensPage(req, res, { created: { token, name: row.name, role: row.role } });
    } catch (e) {
      if (!(e instanceof UserInputError)) throw e;
      res.status(400);
      tokensPage(req, res, { error: e.message });
    }
  });
  r.post('/tokens/:id/revoke', requireRole('admin'), async (req, res) => {
    await act(req, res, '/tokens', () => {
      const id = parseUserId(param(req, 'id'));
      revokeToken(ctx, actorOf(req), id);
      return `Token ${id} revoked.`;
    });
  });

  r.get('/account/password', requireRole('viewer'), (req, res) => {
    const u = accounts.users.get(actorOf(req).userId ?? 0);
    renderPage(req, res, 'account-password', {
      title: 'Change password',
      mustChange: u?.must_change_password === 1,
      error: null,
    });
  });
  r.post('/account/password', requireRole('viewer'), ...passwordChangeLimits(ctx), async (req, res) => {
    const actor = actorOf(req);
    const u = accounts.users.get(actor.userId ?? 0);
    const b = form(req);
    const fail = (error: string): void => {
      res.status(400);
      renderPage(req, res, 'account-password', {
        title: 'Change password',
        mustChange: u?.must_change_password === 1,
        error,
      });
    };
    if (!u) return fail('Your account no longer exists.');
    if (!(await verifyPassword(str(b.current).slice(0, 1024), u.password_hash))) {
      wrongCurrentPassword(res);
      ctx.audit.write({
        actor,
        hostId: null,
        action: 'user passwd',
        params: { username: u.username },
        ok: false,
        errorCode: 'unauthenticated',
        message: 'wrong current password',
      });
      return fail('The current password is wrong.');
    }
    const next = str(b.password);
    const problem =
      passwordProblem(next) ?? (next !== str(b.confirm) ? 'The two new passwords differ.' : null);
    if (problem) return fail(problem);
    if (next === str(b.current)) return fail('The new password must differ from the current one.');
    await accounts.users.setPassword(u.id, next);
    // Sign out every other session; this one gets a new id.
    const s = req.session;
    if (s) {
      accounts.endUserSessions(u.id, s);
      const old = s.key;
      accounts.sessions.regenerate(s, u.id);
      accounts.events.emit('sessionsEnded', [old]);
      setSessionCookie(res, s);
    }
    ctx.audit.write({
      actor,
      hostId: null,
      action: 'user passwd',
      params: { username: u.username },
      ok: true,
    });
    setFlash(req, 'success', 'Your password is changed; your other sessions are signed out.');
    res.redirect(303, '/');
  });
  return r;
}
