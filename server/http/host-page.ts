import type { Request, Response } from 'express';
import type { PanelContext } from '../context.ts';
import type { HostView } from '../hosts/registry.ts';
import { PanelHttpError } from './errors.ts';
import { hostIdParam } from './params.ts';
import { renderPage } from './render.ts';
import { roleAtLeast } from '../auth/roles.ts';
import type { ServiceStatus } from '../../shared/protocol/hello.ts';

/** The host-page tabs in display order (System is the host page itself). */
export const HOST_PAGE_TABS = [
  { id: 'system', label: 'System', module: 'system', icon: 'cpu', href: '' },
  { id: 'websites', label: 'Websites', module: 'websites', icon: 'globe', href: '/websites' },
  { id: 'ftp', label: 'FTP', module: 'ftp', icon: 'folder2-open', href: '/ftp' },
  { id: 'mysql', label: 'Databases', module: 'mysql', icon: 'database', href: '/mysql' },
  { id: 'firewall', label: 'Firewall', module: 'firewall', icon: 'shield-lock', href: '/firewall' },
  { id: 'backups', label: 'Backups', module: 'backups', icon: 'archive', href: '/backups' },
] as const;

export interface HostLocal {
  id: string;
  name: string;
  address: string;
  port: number;
  status: string;
  state: string;
  lastError: string | null;
  agentVersion: string | null;
  hostname: string | null;
  /** Who opens the link: forward (the panel dials address:port) or reverse (the agent dials in). */
  link: 'forward' | 'reverse';
  /** How the agent drives its host: system or sandbox (its hello). */
  adapter: string | null;
}

export const hostLocal = (h: HostView): HostLocal => ({
  id: h.id,
  name: h.name,
  address: h.address,
  port: h.port,
  status: h.status,
  state: h.connection?.state ?? (h.status === 'pending' ? 'pending' : 'offline'),
  lastError: h.connection?.lastError ?? null,
  agentVersion: h.connection?.hello?.agentVersion ?? null,
  hostname: h.connection?.hello?.hostname ?? null,
  link: h.mode,
  adapter: h.connection?.hello?.mode ?? null,
});

/** `{ available, reason, service? }` of a module on a host, from the agent's latest hello. */
export function moduleStatusOf(
  h: HostView,
  module: string,
): { available: boolean; reason: string; service?: ServiceStatus } {
  const c = h.connection;
  if (!c || !c.hello) {
    const why =
      h.status === 'pending'
        ? 'the host has not enrolled yet'
        : `the host is ${c?.state ?? 'offline'}${c?.lastError ? ` (${c.lastError})` : ''}`;
    return { available: false, reason: why };
  }
  if (module === 'system') return { available: true, reason: '' };
  const m = c.hello.modules.find((x) => x.name === module);
  if (!m) return { available: false, reason: `the agent has no ${module} module` };
  return {
    available: m.available,
    reason: m.available ? '' : (m.reason ?? 'unavailable'),
    ...(m.service ? { service: m.service } : {}),
  };
}

/**
 * Renders a host-page tab (`views/hosts/<tab>.pug`, which `extends _host`). Locals: host, tab,
 * tabs, moduleStatus, actor, canWrite, isAdmin, csrfToken, flash, plus the caller's own.
 * 404 for an unknown host.
 */
export async function renderTab(
  ctx: PanelContext,
  req: Request,
  res: Response,
  tab: string,
  locals: Record<string, unknown>,
): Promise<void> {
  const hostId = hostIdParam(req);
  const h = ctx.hosts.get(hostId);
  if (!h) throw new PanelHttpError(404, 'not-found', `No host with id ${hostId}.`);
  const def = HOST_PAGE_TABS.find((t) => t.id === tab);
  await Promise.resolve();
  renderPage(req, res, `hosts/${tab}`, {
    title: `${h.name} · ${def?.label ?? tab}`,
    host: hostLocal(h),
    tab,
    tabs: HOST_PAGE_TABS,
    moduleStatus: moduleStatusOf(h, def?.module ?? tab),
    hostLabels: ctx.labels.get(h.id),
    // Labels decide who sees a host: only an actor on every host may change them.
    canLabel:
      roleAtLeast(req.actor?.role ?? 'viewer', 'operator') && !!req.actor && ctx.scopes.wholeFleet(req.actor),
    ...locals,
  });
}
