import express, { Router } from 'express';
import type { PanelContext } from '../context.ts';
import { csrfProtection } from '../auth/csrf.ts';
import { panelSecret } from '../auth/panel-secret.ts';
import { progressScope } from './progress.ts';
import { loginRoutes, requireLogin } from '../auth/login.ts';
import { sessionMiddleware } from '../auth/sessions.ts';
import { hostScopeGuard } from '../auth/host-guard.ts';
import { websitesPages } from './websites.ts';
import { ftpPages } from './ftp.ts';
import { mysqlPages } from './mysql.ts';
import { firewallPages } from './firewall.ts';
import { backupsPages } from './backups.ts';
import { overviewPages } from './overview.ts';
import { hostSystemPages } from './host-system.ts';
import { hostsAdminPages } from './hosts-admin.ts';
import { accountPages } from './accounts.ts';
import { twoFactorPages } from './two-factor-page.ts';
import { auditPages } from './audit-page.ts';
import { settingsPages } from './settings-page.ts';
import { jobsPages } from './jobs-page.ts';

/** Host-page tabs, each a router mounted at /hosts/:hostId/<tab>. */
export const HOST_TABS = [
  { id: 'websites', label: 'Websites', module: 'websites', make: websitesPages },
  { id: 'ftp', label: 'FTP', module: 'ftp', make: ftpPages },
  { id: 'mysql', label: 'Databases', module: 'mysql', make: mysqlPages },
  { id: 'firewall', label: 'Firewall', module: 'firewall', make: firewallPages },
  { id: 'backups', label: 'Backups', module: 'backups', make: backupsPages },
] as const;

/**
 * The dashboard (server-rendered Pug pages): URL-encoded forms, SQLite sessions, CSRF on every
 * state-changing request, public login/setup routes, then signed-in pages and host tabs.
 */
export function dashboardRouter(ctx: PanelContext): Router {
  const r = Router();
  const { accounts } = ctx;
  r.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 200 }));
  r.use(sessionMiddleware(accounts.sessions));
  r.use(csrfProtection(panelSecret(ctx.db, 'prelogin-csrf')));
  r.use(progressScope());
  r.use(loginRoutes(ctx, accounts));
  r.use(requireLogin(accounts, ctx.twoFactor));
  // Before every page under a host: the host scope check (server/auth/host-guard.ts).
  r.use('/hosts/:hostId', hostScopeGuard({ scopes: ctx.scopes, hosts: ctx.hosts.repo }));
  r.use(overviewPages(ctx));
  r.use(hostsAdminPages(ctx));
  r.use(hostSystemPages(ctx));
  r.use(accountPages(ctx));
  r.use(twoFactorPages(ctx));
  r.use(auditPages(ctx));
  r.use(settingsPages(ctx));
  r.use(jobsPages(ctx));
  for (const tab of HOST_TABS) r.use(`/hosts/:hostId/${tab.id}`, tab.make(ctx));
  return r;
}
