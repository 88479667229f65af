import { randomInt } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { CHARSETS, DB_PRIVILEGES, READ_ONLY_PRIVILEGES } from '../../shared/validate/mysql.ts';
import { hostIdParam } from './params.ts';
import { renderTab } from './host-page.ts';
import { setFlash } from './flash.ts';

// No look-alikes (0/O, 1/l/I) and nothing a shell or a config file would need quoted.
const ALPHABET = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.';

/** A random 20-character password (about 118 bits). */
export function generateDbPassword(length = 20): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

const field = (req: Request, name: string): string => {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

const fields = (req: Request, name: string): string[] => {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
};

/**
 * The "Databases" tab at /hosts/:hostId/mysql: databases with sizes, accounts with their grants,
 * and forms to create / drop databases, create / drop accounts, set passwords, grant and revoke.
 * Works without JavaScript (POST → 303 back with a flash message); a generated password is shown
 * once on the response page itself (never stored, never in a redirect URL).
 */
export function mysqlPages(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  const tabUrl = (hostId: string): string => `/hosts/${encodeURIComponent(hostId)}/mysql`;

  const show = async (req: Request, res: Response, extra: Record<string, unknown> = {}): Promise<void> => {
    const actor = actorOf(req);
    const hostId = hostIdParam(req);
    const [dbs, users] = await Promise.all([
      ctx.actions.call(actor, hostId, 'list databases', {}),
      ctx.actions.call(actor, hostId, 'list database users', {}),
    ]);
    const listError = !dbs.ok ? dbs.error.message : !users.ok ? users.error.message : null;
    await renderTab(ctx, req, res, 'mysql', {
      databases: dbs.ok ? dbs.data.databases : [],
      users: users.ok ? users.data.users : [],
      listError,
      charsets: CHARSETS,
      privileges: DB_PRIVILEGES,
      readOnlyPrivileges: READ_ONLY_PRIVILEGES,
      generated: null,
      ...extra,
    });
  };

  const done = async (
    req: Request,
    res: Response,
    ok: boolean,
    message: string,
    generated: { account: string; password: string } | null = null,
  ): Promise<void> => {
    if (ok && generated) {
      res.set('cache-control', 'no-store');
      await show(req, res, { generated, flash: [{ kind: 'success', message }] });
      return;
    }
    setFlash(req, ok ? 'success' : 'danger', message);
    res.redirect(303, tabUrl(hostIdParam(req)));
  };

  r.get('/', requireRole('viewer'), async (req, res) => {
    await show(req, res);
  });

  r.post('/databases/create', requireRole('operator'), async (req, res) => {
    const charset = field(req, 'charset');
    const collation = field(req, 'collation');
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'create database', {
      name: field(req, 'name').trim(),
      ...(charset !== '' ? { charset: charset as 'utf8mb4' } : {}),
      ...(collation !== '' ? { collation } : {}),
    });
    await done(
      req,
      res,
      reply.ok,
      reply.ok ? `Database ${reply.data.name} created (${reply.data.collation}).` : reply.error.message,
    );
  });

  r.post('/databases/drop', requireRole('operator'), async (req, res) => {
    const name = field(req, 'name');
    if (field(req, 'confirm') !== 'yes') {
      await done(req, res, false, `Tick “yes, drop ${name}” to drop the database and all its tables.`);
      return;
    }
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'drop database', { name });
    await done(req, res, reply.ok, reply.ok ? `Database ${name} dropped.` : reply.error.message);
  });

  r.post('/users/create', requireRole('operator'), async (req, res) => {
    const user = field(req, 'user').trim();
    const host = field(req, 'host').trim() || 'localhost';
    const typed = field(req, 'password');
    const password = typed === '' ? generateDbPassword() : typed;
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'create database user', {
      user,
      host,
      password,
    });
    const account = reply.ok ? `${reply.data.user}@${reply.data.host}` : `${user}@${host}`;
    await done(
      req,
      res,
      reply.ok,
      reply.ok ? `Database user ${account} created.` : reply.error.message,
      typed === '' ? { account, password } : null,
    );
  });

  r.post('/users/password', requireRole('operator'), async (req, res) => {
    const user = field(req, 'user');
    const host = field(req, 'host');
    const typed = field(req, 'password');
    const password = typed === '' ? generateDbPassword() : typed;
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'set database password', {
      user,
      host,
      password,
    });
    await done(
      req,
      res,
      reply.ok,
      reply.ok ? `New password set for ${user}@${host}.` : reply.error.message,
      typed === '' ? { account: `${user}@${host}`, password } : null,
    );
  });

  r.post('/users/grant', requireRole('operator'), async (req, res) => {
    const user = field(req, 'user');
    const host = field(req, 'host');
    const database = field(req, 'database');
    const preset = field(req, 'preset');
    const privileges: 'all' | 'read-only' | string[] =
      preset === 'all' || preset === 'read-only' ? preset : fields(req, 'privileges');
    if (Array.isArray(privileges) && privileges.length === 0) {
      await done(req, res, false, 'Choose “all”, “read-only” or at least one privilege.');
      return;
    }
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'grant database', {
      user,
      host,
      database,
      privileges,
    });
    await done(
      req,
      res,
      reply.ok,
      reply.ok ? `${user}@${host} now has ${describe(privileges)} on ${database}.` : reply.error.message,
    );
  });

  r.post('/users/revoke', requireRole('operator'), async (req, res) => {
    const user = field(req, 'user');
    const host = field(req, 'host');
    const database = field(req, 'database');
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'revoke database', {
      user,
      host,
      database,
    });
    await done(
      req,
      res,
      reply.ok,
      reply.ok ? `Privileges of ${user}@${host} on ${database} revoked.` : reply.error.message,
    );
  });

  r.post('/users/drop', requireRole('operator'), async (req, res) => {
    const user = field(req, 'user');
    const host = field(req, 'host');
    if (field(req, 'confirm') !== 'yes') {
      await done(req, res, false, `Tick “yes, drop ${user}@${host}” to drop the database user.`);
      return;
    }
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'drop database user', {
      user,
      host,
    });
    await done(req, res, reply.ok, reply.ok ? `Database user ${user}@${host} dropped.` : reply.error.message);
  });

  return r;
}

const describe = (p: 'all' | 'read-only' | string[]): string =>
  p === 'all' ? 'all privileges' : p === 'read-only' ? 'read-only access' : p.join(', ').toUpperCase();
