import express, { Router, type ErrorRequestHandler } from 'express';
import type { PanelContext } from '../context.ts';
import { PanelHttpError, statusForCode } from '../http/errors.ts';
import { bearerAuth } from './auth.ts';
import { hostScopeGuard } from '../auth/host-guard.ts';
import { hostsApi } from './hosts.ts';
import { websitesApi } from './websites.ts';
import { ftpApi } from './ftp.ts';
import { mysqlApi } from './mysql.ts';
import { firewallApi } from './firewall.ts';
import { backupsApi } from './backups.ts';
import { accountsApi } from './accounts.ts';
import { jobsApi } from './jobs.ts';

/** Domain routers, each relative to /api/v1/hosts/:hostId. */
const DOMAIN_APIS = [websitesApi, ftpApi, mysqlApi, firewallApi, backupsApi];

/** REST API v1: bearer tokens, JSON in and out, errors as { error: { code, message } }. */
export function apiRouter(ctx: PanelContext): Router {
  const api = Router();
  api.use(express.json({ limit: '256kb' }));
  api.use(bearerAuth(ctx));
  // Before every route under a host: the host scope check (server/auth/host-guard.ts).
  api.use('/hosts/:hostId', hostScopeGuard({ scopes: ctx.scopes, hosts: ctx.hosts.repo }));
  api.use(accountsApi(ctx));
  api.use(hostsApi(ctx));
  api.use(jobsApi(ctx));
  for (const make of DOMAIN_APIS) api.use('/hosts/:hostId', make(ctx));
  api.use((_req, _res, next) => next(new PanelHttpError(404, 'not-found', 'No such API endpoint.')));
  const onError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
    if (err instanceof PanelHttpError) {
      res.status(err.status).json({ error: { code: err.code, message: err.message } });
      return;
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.parse.failed' || e.type === 'entity.too.large') {
      res.status(e.status ?? 400).json({
        error: { code: 'invalid-argument', message: 'The request body is not valid JSON or is too large.' },
      });
      return;
    }
    ctx.logger.error({ err }, 'API error');
    res
      .status(statusForCode('internal'))
      .json({ error: { code: 'internal', message: 'Internal error; see the panel log.' } });
  };
  api.use(onError);
  return api;
}
