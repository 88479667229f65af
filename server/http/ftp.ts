import { randomInt } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { hostIdParam, param } from './params.ts';
import { renderTab } from './host-page.ts';
import { setFlash } from './flash.ts';

const ALPHABET = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.';
const GENERATED_LENGTH = 20;

export function generatePassword(length = GENERATED_LENGTH): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

const field = (req: Request, name: string): string => {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

export function ftpPages(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  const tabUrl = (hostId: string): string => `/hosts/${encodeURIComponent(hostId)}/ftp`;

  const show = async (req: Request, res: Response, extra: Record<string, unknown> = {}): Promise<void> => {
    const actor = actorOf(req);
    const hostId = hostIdParam(req);
    const list = await ctx.actions.call(actor, hostId, 'list ftp users', {});
    const sites = await ctx.actions.call(actor, hostId, 'list websites', {});
    const docroots = sites.ok
      ? sites.data.websites.flatMap((w) => (w.docroot ? [{ domain: w.domain, docroot: w.docroot }] : []))
      : [];
    await renderTab(ctx, req, res, 'ftp', {
      users: list.ok ? list.data.users : [],
      listError: list.ok ? null : list.error.message,
      docroots,
      generated: null,
      ...extra,
    });
  };

  const done = async (
    req: Request,
    res: Response,
    ok: boolean,
    message: string,
    generated: { username: string; password: string } | null,
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

  r.post('/create', requireRole('operator'), async (req, res) => {
    const username = field(req, 'username').trim();
    const typed = field(req, 'password');
    const password = typed === '' ? generatePassword() : typed;
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'create ftp user', {
      username,
      password,
      home: field(req, 'home').trim(),
    });
    await done(
      req,
      res,
      reply.ok,
      reply.ok ? `FTP user ${reply.data.username} created (home ${reply.data.home}).` : reply.error.message,
      typed === '' ? { username, password } : null,
    );
  });

  r.post('/:username/password', requireRole('operator'), async (req, res) => {
    const username = param(req, 'username');
    const typed = field(req, 'password');
    const password = typed === '' ? generatePassword() : typed;
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'set ftp password', {
      username,
      password,
    });
    await done(
      req,
      res,
      reply.ok,
      reply.ok ? `New password set for ${username}.` : reply.error.message,
      typed === '' ? { username, password } : null,
    );
  });

  for (const action of ['disable', 'enable'] as const) {
    r.post(`/:username/${action}`, requireRole('operator'), async (req, res) => {
      const username = param(req, 'username');
      const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), `${action} ftp user`, {
        username,
      });
      await done(
        req,
        res,
        reply.ok,
        reply.ok ? `FTP user ${username} ${action}d.` : reply.error.message,
        null,
      );
    });
  }

  r.post('/:username/delete', requireRole('operator'), async (req, res) => {
    const username = param(req, 'username');
    if (field(req, 'confirm') !== 'yes') {
      await done(req, res, false, `Tick “yes, delete ${username}” to delete the FTP user.`, null);
      return;
    }
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'delete ftp user', { username });
    await done(
      req,
      res,
      reply.ok,
      reply.ok ? `FTP user ${username} deleted; its files were kept.` : reply.error.message,
      null,
    );
  });

  return r;
}
