import { Router, type Request, type Response } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { domainForDisplay } from '../../shared/validate/domain.ts';
import { hostIdParam, param } from './params.ts';
import { renderTab } from './host-page.ts';
import { setFlash } from './flash.ts';

const field = (req: Request, name: string): string => {
  const v: unknown = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

const PHP_NUMBER_FIELDS = ['memoryLimitMb', 'uploadMaxMb', 'maxExecutionSeconds', 'maxChildren'] as const;

/**
 * The PHP settings of the form: empty fields are left out (defaults); anything typed is passed
 * as a number when it is one, else as typed, so the agent's schema refuses it with its sentence.
 */
export function phpSettingsFromForm(req: Request): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of PHP_NUMBER_FIELDS) {
    const v = field(req, k).trim();
    if (v !== '') out[k] = /^[0-9]{1,9}$/.test(v) ? Number(v) : v;
  }
  if (field(req, 'displayErrors') === 'yes') out.displayErrors = true;
  return out;
}

/** Aliases typed in one field, separated by spaces, commas or line breaks. */
export const splitAliases = (s: string): string[] => s.split(/[\s,]+/).filter((a) => a !== '');

/**
 * Dashboard tab of the websites domain, mounted at /hosts/:hostId/websites (mergeParams). Every
 * form works without JavaScript (POST → 303 back with a flash); delete asks for confirmation
 * with a required checkbox.
 */
export function websitesPages(ctx: PanelContext): Router {
  const r = Router({ mergeParams: true });
  const tabUrl = (hostId: string): string => `/hosts/${encodeURIComponent(hostId)}/websites`;
  const back = (req: Request, res: Response, ok: boolean, message: string): void => {
    setFlash(req, ok ? 'success' : 'danger', message);
    res.redirect(303, tabUrl(hostIdParam(req)));
  };

  r.get('/', requireRole('viewer'), async (req, res) => {
    const list = await ctx.actions.call(actorOf(req), hostIdParam(req), 'list websites', {});
    const websites = list.ok
      ? list.data.websites
          .map((w) => ({ ...w, display: domainForDisplay(w.domain) }))
          .sort((a, b) => a.display.localeCompare(b.display))
      : [];
    await renderTab(ctx, req, res, 'websites', {
      websites,
      servedAt: list.ok ? (list.data.url ?? null) : null,
      listError: list.ok ? null : list.error.message,
      phpVersions: list.ok ? (list.data.phpVersions ?? []) : [],
      phpUnavailable: list.ok ? (list.data.phpUnavailable ?? null) : null,
    });
  });

  r.post('/create', requireRole('operator'), async (req, res) => {
    const aliases = splitAliases(field(req, 'aliases'));
    const adminEmail = field(req, 'adminEmail').trim();
    const php = field(req, 'php');
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'create website', {
      domain: field(req, 'domain').trim(),
      ...(aliases.length > 0 ? { aliases } : {}),
      ...(adminEmail !== '' ? { adminEmail } : {}),
      ...(php !== '' && php !== 'none' ? { php: php as never } : {}),
    });
    back(
      req,
      res,
      reply.ok,
      reply.ok
        ? `Website ${domainForDisplay(reply.data.domain)} created and enabled (files in ${reply.data.docroot ?? '?'}).`
        : reply.error.message,
    );
  });

  for (const action of ['enable', 'disable'] as const) {
    r.post(`/:domain/${action}`, requireRole('operator'), async (req, res) => {
      const domain = param(req, 'domain');
      const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), `${action} website`, { domain });
      back(
        req,
        res,
        reply.ok,
        reply.ok ? `Website ${domainForDisplay(reply.data.domain)} ${action}d.` : reply.error.message,
      );
    });
  }

  r.post('/:domain/php', requireRole('operator'), async (req, res) => {
    const domain = param(req, 'domain');
    const php = field(req, 'php');
    const settings = php === 'none' ? undefined : phpSettingsFromForm(req);
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'set website php', {
      domain,
      php: php as never,
      ...(settings !== undefined ? { phpSettings: settings } : {}),
    });
    back(
      req,
      res,
      reply.ok,
      reply.ok
        ? reply.data.php
          ? `PHP ${reply.data.php.version} is on for ${domainForDisplay(reply.data.domain)} (pool user ${reply.data.owner ?? '?'}).`
          : `PHP is off for ${domainForDisplay(reply.data.domain)}.`
        : reply.error.message,
    );
  });

  r.post('/:domain/https', requireRole('operator'), async (req, res) => {
    const domain = param(req, 'domain');
    const https = field(req, 'https');
    const certificate = field(req, 'certificate');
    const key = field(req, 'key');
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'set website https', {
      domain,
      https: https as never,
      ...(https !== 'off'
        ? { redirect: field(req, 'redirect') === 'yes', hsts: field(req, 'hsts') === 'yes' }
        : {}),
      ...(https === 'own' ? { certificate, key } : {}),
    });
    const h = reply.ok ? reply.data.https : null;
    back(
      req,
      res,
      reply.ok,
      reply.ok
        ? h
          ? `HTTPS is on for ${domainForDisplay(reply.data.domain)} (${h.mode === 'acme' ? 'certificate from the ACME CA' : 'your certificate'}${h.certificate ? `, valid until ${new Date(h.certificate.notAfter).toISOString().slice(0, 10)}` : ''}).`
          : `HTTPS is off for ${domainForDisplay(reply.data.domain)}.`
        : reply.error.message,
    );
  });

  r.post('/:domain/renew-certificate', requireRole('operator'), async (req, res) => {
    const domain = param(req, 'domain');
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'renew website certificate', {
      domain,
    });
    back(
      req,
      res,
      reply.ok,
      reply.ok ? `The certificate of ${domainForDisplay(domain)} was renewed.` : reply.error.message,
    );
  });

  r.post('/:domain/delete', requireRole('operator'), async (req, res) => {
    const domain = param(req, 'domain');
    if (field(req, 'confirm') !== 'yes') {
      back(req, res, false, `Tick “yes, delete ${domain}” to delete the website.`);
      return;
    }
    const removeFiles = field(req, 'removeFiles') === 'yes';
    const reply = await ctx.actions.call(actorOf(req), hostIdParam(req), 'delete website', {
      domain,
      removeFiles,
    });
    back(
      req,
      res,
      reply.ok,
      reply.ok
        ? `Website ${domainForDisplay(reply.data.domain)} deleted; ${reply.data.filesRemoved ? 'its files were removed' : 'its files were kept'}.`
        : reply.error.message,
    );
  });

  return r;
}
