import { Router } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import type { Actor } from '../db/audit.ts';
import type { HostView } from '../hosts/registry.ts';
import { hostLocal } from './host-page.ts';
import { renderPage } from './render.ts';
import { roleAtLeast } from '../auth/roles.ts';

export interface HostSummary {
  load: number | null;
  diskPercent: number | null;
  sites: number | null;
  ftpUsers: number | null;
  databases: number | null;
}

const QUICK = { timeoutMs: 4_000 };

/** Load, root-disk use and resource counts of an online host (each null when unknown). */
export async function hostSummary(ctx: PanelContext, actor: Actor, h: HostView): Promise<HostSummary> {
  const out: HostSummary = { load: null, diskPercent: null, sites: null, ftpUsers: null, databases: null };
  if (h.connection?.state !== 'online') return out;
  const avail = (m: string) => h.connection?.hello?.modules.some((x) => x.name === m && x.available) ?? false;
  const [info, sites, ftp, dbs] = await Promise.all([
    ctx.actions.call(actor, h.id, 'system info', {}, QUICK),
    avail('websites') ? ctx.actions.call(actor, h.id, 'list websites', {}, QUICK) : null,
    avail('ftp') ? ctx.actions.call(actor, h.id, 'list ftp users', {}, QUICK) : null,
    avail('mysql') ? ctx.actions.call(actor, h.id, 'list databases', {}, QUICK) : null,
  ]);
  if (info.ok) {
    out.load = info.data.load[0];
    const root = info.data.disks.find((d) => d.mount === '/') ?? info.data.disks[0];
    if (root && root.sizeBytes > 0) out.diskPercent = Math.round((root.usedBytes / root.sizeBytes) * 100);
  }
  if (sites?.ok) out.sites = sites.data.websites.length;
  if (ftp?.ok) out.ftpUsers = countOf(ftp.data);
  if (dbs?.ok) out.databases = countOf(dbs.data);
  return out;
}

/** Length of the first array in a list reply (domain replies are `{ <things>: [...] }`). */
function countOf(data: unknown): number | null {
  if (Array.isArray(data)) return data.length;
  if (data && typeof data === 'object')
    for (const v of Object.values(data)) if (Array.isArray(v)) return v.length;
  return null;
}

/** Overview: every host with its live state, agent version, load, disk and resource counts. */
export function overviewPages(ctx: PanelContext): Router {
  const r = Router();
  r.get('/', requireRole('viewer'), async (req, res) => {
    const actor = actorOf(req);
    // Hosts outside the actor's scope are not shown at all (server/auth/host-scope.ts).
    const hosts = ctx.scopes.filter(actor, ctx.hosts.list(), (h) => h.id);
    const summaries = await Promise.all(hosts.map((h) => hostSummary(ctx, actor, h)));
    renderPage(req, res, 'overview', {
      title: 'Overview',
      canAddHost: roleAtLeast(actor.role, 'operator') && ctx.scopes.wholeFleet(actor),
      hosts: hosts.map((h, i) => ({ ...hostLocal(h), summary: summaries[i] })),
    });
  });
  return r;
}
