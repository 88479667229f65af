import type { Express } from 'express';

export interface ServedRoute {
  method: string;
  /** Express syntax: `/api/v1/hosts/:hostId/websites`. */
  path: string;
}

interface LayerLike {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: LayerLike[] };
}

/**
 * Every route an Express app serves, found by walking its router (nested routers included), so a
 * test can compare what is served with what a route table declares.
 */
export function servedRoutes(app: Express): ServedRoute[] {
  const out: ServedRoute[] = [];
  const walk = (stack: LayerLike[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        const p = typeof layer.route.path === 'string' ? layer.route.path : String(layer.route.path);
        for (const [m, on] of Object.entries(layer.route.methods))
          if (on && m !== '_all') out.push({ method: m.toUpperCase(), path: prefix + p });
        continue;
      }
      const inner = layer.handle?.stack;
      if (Array.isArray(inner)) {
        const raw = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(inner, prefix + raw);
      }
    }
  };
  const router = (app as unknown as { router: { stack: LayerLike[] } }).router;
  walk(router.stack, '');
  return out;
}

/** `/hosts/:hostId/websites/:domain` → `/hosts/{hostId}/websites/{domain}` (OpenAPI style). */
export const toOpenApiPath = (p: string): string => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
