import { Router } from 'express';
import type { PanelContext } from '../context.ts';
import { actorOf, requireRole } from '../auth/actor.ts';
import { renderPage } from './render.ts';

export const AUDIT_PAGE_SIZE = 50;

/** Parses audit filters from a query string (unknown or malformed values are ignored). */
export function auditFilters(q: Record<string, unknown>): {
  hostId?: string;
  actor?: string;
  action?: string;
  page: number;
} {
  const s = (v: unknown): string | undefined =>
    typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : undefined;
  const page = typeof q.page === 'string' && /^\d{1,6}$/.test(q.page) ? Math.max(1, Number(q.page)) : 1;
  const out: { hostId?: string; actor?: string; action?: string; page: number } = { page };
  const host = s(q.host);
  const actor = s(q.actor);
  const action = s(q.action);
  if (host) out.hostId = host;
  if (actor) out.actor = actor;
  if (action) out.action = action;
  return out;
}

/** The audit log: filter by host, user and action; paginated, newest first. */
export function auditPages(ctx: PanelContext): Router {
  const r = Router();
  r.get('/audit', requireRole('viewer'), (req, res) => {
    const f = auditFilters(req.query);
    // A scoped actor sees only entries about their hosts (server/auth/host-scope.ts).
    const ids = ctx.scopes.visibleIds(actorOf(req));
    const within = ids === null ? undefined : [...ids];
    const { rows, total } = ctx.audit.query({
      ...f,
      ...(within ? { withinHosts: within } : {}),
      limit: AUDIT_PAGE_SIZE,
      offset: (f.page - 1) * AUDIT_PAGE_SIZE,
    });
    const distinct = (col: 'actor' | 'action' | 'host_id'): string[] => ctx.audit.distinct(col, within);
    const pages = Math.max(1, Math.ceil(total / AUDIT_PAGE_SIZE));
    const qs = (page: number): string => {
      const p = new URLSearchParams();
      if (f.hostId) p.set('host', f.hostId);
      if (f.actor) p.set('actor', f.actor);
      if (f.action) p.set('action', f.action);
      if (page > 1) p.set('page', String(page));
      const s = p.toString();
      return s ? `/audit?${s}` : '/audit';
    };
    const hostNames = new Map(
      ctx.scopes.filter(actorOf(req), ctx.hosts.repo.list(), (h) => h.id).map((h) => [h.id, h.name]),
    );
    renderPage(req, res, 'audit', {
      title: 'Audit log',
      rows: rows.map((row) => ({
        ...row,
        hostName: row.host_id ? (hostNames.get(row.host_id) ?? row.host_id) : null,
      })),
      total,
      filters: f,
      page: f.page,
      pages,
      prevUrl: f.page > 1 ? qs(f.page - 1) : null,
      nextUrl: f.page < pages ? qs(f.page + 1) : null,
      options: { actors: distinct('actor'), actions: distinct('action'), hosts: distinct('host_id') },
      hostNames: Object.fromEntries(hostNames),
    });
  });
  return r;
}
