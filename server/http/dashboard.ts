import { Router } from 'express';
import type { PanelContext } from '../context.ts';
import { websitesPages } from './websites.ts';
import { ftpPages } from './ftp.ts';
import { mysqlPages } from './mysql.ts';
import { firewallPages } from './firewall.ts';

/** Host-page tabs, each a router mounted at /hosts/:hostId/<tab>. */
export const HOST_TABS = [
  { id: 'websites', label: 'Websites', module: 'websites', make: websitesPages },
  { id: 'ftp', label: 'FTP', module: 'ftp', make: ftpPages },
  { id: 'mysql', label: 'Databases', module: 'mysql', make: mysqlPages },
  { id: 'firewall', label: 'Firewall', module: 'firewall', make: firewallPages },
] as const;

/**
 * The dashboard (server-rendered Pug pages). Skeleton: sessions, login, CSRF and the pages come
 * with the dashboard work (issue 8).
 */
export function dashboardRouter(ctx: PanelContext): Router {
  const r = Router();
  for (const tab of HOST_TABS) r.use(`/hosts/:hostId/${tab.id}`, tab.make(ctx));
  r.get('/', (_req, res) => {
    res.render('placeholder', { title: 'PonIO' });
  });
  return r;
}
