import type { RequestHandler } from 'express';
import type { PanelContext } from '../context.ts';
import { PanelHttpError } from '../http/errors.ts';
import { minRole } from '../auth/roles.ts';

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
    // A token made by a user acts for that user: never beyond their current role, and not at
    // all once they are disabled (deleting a user revokes their tokens, users.ts). Tokens made
    // with the CLI (no creator) keep the role they were given.
    const creator = row.created_by === null ? null : ctx.accounts.users.get(row.created_by);
    if (row.created_by !== null && (!creator || creator.disabled === 1)) {
      next(
        new PanelHttpError(
          401,
          'unauthenticated',
          'The API token no longer works: the user who created it is disabled or deleted.',
        ),
      );
      return;
    }
    req.actor = {
      kind: 'token',
      name: creator ? `token:${row.name} (${creator.username})` : `token:${row.name}`,
      role: creator ? minRole(row.role, creator.role) : row.role,
      tokenId: row.id,
    };
    next();
  };
}
