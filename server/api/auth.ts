import type { RequestHandler } from 'express';
import type { PanelContext } from '../context.ts';
import { PanelHttpError } from '../http/errors.ts';

/** Bearer-token authentication for /api/v1 (Authorization: Bearer pio_…). */
export function bearerAuth(ctx: PanelContext): RequestHandler {
  return (req, res, next) => {
    // API replies hold account and host data: never kept by a browser or proxy cache.
    res.set('cache-control', 'no-store');
    const h = req.headers.authorization;
    if (!h) {
      next();
      return;
    }
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    const row = m?.[1] ? ctx.apiTokens.verify(m[1]) : null;
    if (!row) {
      next(new PanelHttpError(401, 'unauthenticated', 'The API token is unknown, revoked or expired.'));
      return;
    }
    req.actor = { kind: 'token', name: `token:${row.name}`, role: row.role, tokenId: row.id };
    next();
  };
}
