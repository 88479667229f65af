import { Router, type Request, type Response, type NextFunction } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { UserInputError, userView } from '../auth/users.ts';
import {
  addUser,
  createToken,
  deleteUser,
  parseUserId,
  resetPassword,
  revokeToken,
  resetTwoFactor,
  setGrants,
  setTwoFactorRequirement,
  tokenView,
  updateUser,
} from '../auth/admin-ops.ts';
import { PanelHttpError, statusForCode } from '../http/errors.ts';
import { param } from '../http/params.ts';
import { auditFilters } from '../http/audit-page.ts';
import { openApiDocument } from './openapi.ts';

const bodyOf = (req: Request): Record<string, unknown> =>
  req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body)
    ? (req.body as Record<string, unknown>)
    : {};

/** Refuses body fields a route does not know (like the agent does). */
function only(body: Record<string, unknown>, allowed: string[]): void {
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  if (extra.length > 0)
    throw new PanelHttpError(400, 'invalid-argument', `Unknown field(s): ${extra.slice(0, 5).join(', ')}.`);
}

/** Maps UserInputError to the API's JSON errors. */
const wrap =
  (fn: (req: Request, res: Response) => Promise<void> | void) =>
  async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      await fn(req, res);
    } catch (e) {
      if (e instanceof UserInputError) {
        next(new PanelHttpError(statusForCode(e.code), e.code, e.message));
        return;
      }
      throw e;
    }
  };

/** /api/v1: me, users and tokens (admin), the audit log, the OpenAPI document. */
export function accountsApi(ctx: PanelContext): Router {
  const r = Router();
  r.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument(ctx.publicUrl()));
  });
  r.get('/me', requireRole('viewer'), (req, res) => {
    const a = actorOf(req);
    const ids = ctx.scopes.visibleIds(a);
    res.json({ data: { name: a.name, kind: a.kind, role: a.role, hosts: ids === null ? 'all' : [...ids] } });
  });

  r.get('/users', requireRole('admin'), (_req, res) => {
    res.json({ data: ctx.accounts.users.list().map(userView) });
  });
  r.post(
    '/users',
    requireRole('admin'),
    wrap(async (req, res) => {
      const b = bodyOf(req);
      only(b, ['username', 'password', 'role', 'mustChangePassword']);
      if (b.mustChangePassword !== undefined && typeof b.mustChangePassword !== 'boolean')
        throw new UserInputError('mustChangePassword must be true or false.');
      const u = await addUser(ctx, actorOf(req), {
        username: b.username,
        password: b.password,
        role: b.role,
        mustChangePassword: b.mustChangePassword !== false,
      });
      res.status(201).json({ data: u });
    }),
  );
  r.get(
    '/users/:id',
    requireRole('admin'),
    wrap((req, res) => {
      const u = ctx.accounts.users.get(parseUserId(param(req, 'id')));
      if (!u) throw new UserInputError('No such user.', 'not-found');
      res.json({ data: userView(u) });
    }),
  );
  r.patch(
    '/users/:id',
    requireRole('admin'),
    wrap((req, res) => {
      const b = bodyOf(req);
      only(b, ['role', 'disabled']);
      res.json({ data: updateUser(ctx, actorOf(req), parseUserId(param(req, 'id')), b) });
    }),
  );
  r.put(
    '/users/:id/password',
    requireRole('admin'),
    wrap(async (req, res) => {
      const b = bodyOf(req);
      only(b, ['password']);
      await resetPassword(ctx, actorOf(req), parseUserId(param(req, 'id')), b.password);
      res.json({ data: { changed: true } });
    }),
  );
  r.get(
    '/users/:id/grants',
    requireRole('admin'),
    wrap((req, res) => {
      const id = parseUserId(param(req, 'id'));
      if (!ctx.accounts.users.get(id)) throw new UserInputError('No such user.', 'not-found');
      res.json({ data: ctx.accounts.grants.of(id) });
    }),
  );
  r.put(
    '/users/:id/grants',
    requireRole('admin'),
    wrap((req, res) => {
      const b = bodyOf(req);
      only(b, ['grants']);
      res.json({ data: setGrants(ctx, actorOf(req), parseUserId(param(req, 'id')), b.grants) });
    }),
  );
  r.delete(
    '/users/:id/two-factor',
    requireRole('admin'),
    wrap((req, res) => {
      const message = resetTwoFactor(ctx, actorOf(req), parseUserId(param(req, 'id')));
      res.json({ data: { reset: true, message } });
    }),
  );
  r.get('/settings/two-factor', requireRole('admin'), (_req, res) => {
    res.json({ data: { require: ctx.twoFactor.repo.requirement() } });
  });
  r.put(
    '/settings/two-factor',
    requireRole('admin'),
    wrap((req, res) => {
      const b = bodyOf(req);
      only(b, ['require']);
      res.json({ data: { require: setTwoFactorRequirement(ctx, actorOf(req), b.require) } });
    }),
  );
  r.delete(
    '/users/:id',
    requireRole('admin'),
    wrap((req, res) => {
      deleteUser(ctx, actorOf(req), parseUserId(param(req, 'id')));
      res.json({ data: { deleted: true } });
    }),
  );

  r.get('/tokens', requireRole('admin'), (_req, res) => {
    res.json({ data: ctx.apiTokens.list().map(tokenView) });
  });
  r.post(
    '/tokens',
    requireRole('admin'),
    wrap((req, res) => {
      const b = bodyOf(req);
      only(b, ['name', 'role', 'expiresInDays', 'selector']);
      const { token, row } = createToken(ctx, actorOf(req), b as { name: unknown; role: unknown });
      res.set('cache-control', 'no-store');
      res.status(201).json({ data: { ...tokenView(row), token } });
    }),
  );
  r.delete(
    '/tokens/:id',
    requireRole('admin'),
    wrap((req, res) => {
      const id = parseUserId(param(req, 'id'));
      revokeToken(ctx, actorOf(req), id);
      const t = ctx.apiTokens.get(id);
      res.json({ data: t ? tokenView(t) : null });
    }),
  );

  r.get('/audit', requireRole('viewer'), (req, res) => {
    const f = auditFilters(req.query);
    const q = req.query as Record<string, unknown>;
    const num = (v: unknown, d: number): number =>
      typeof v === 'string' && /^\d{1,7}$/.test(v) ? Number(v) : d;
    const ids = ctx.scopes.visibleIds(actorOf(req));
    const { rows, total } = ctx.audit.query({
      ...f,
      ...(ids === null ? {} : { withinHosts: [...ids] }),
      ...(typeof q.job === 'string' && /^\d{1,12}$/.test(q.job) ? { jobId: Number(q.job) } : {}),
      limit: num(q.limit, 50),
      offset: num(q.offset, 0),
    });
    res.json({
      data: {
        total,
        entries: rows.map((e) => ({
          id: e.id,
          at: e.at,
          actor: e.actor,
          actorKind: e.actor_kind,
          hostId: e.host_id,
          action: e.action,
          params: e.params === null ? null : (JSON.parse(e.params) as unknown),
          ok: e.ok === 1,
          errorCode: e.error_code,
          message: e.message,
          durationMs: e.duration_ms,
          jobId: e.job_id,
        })),
      },
    });
  });
  return r;
}
