import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Actor } from '../db/audit.ts';
import { roleAtLeast, type Role } from './roles.ts';
import { PanelHttpError } from '../http/errors.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Who is acting: set by the session (dashboard) or bearer-token (API) middleware. */
      actor?: Actor;
    }
  }
}

/** The actor of an authenticated request (throws 401 when there is none). */
export function actorOf(req: Request): Actor {
  if (!req.actor) throw new PanelHttpError(401, 'unauthenticated', 'Authentication required.');
  return req.actor;
}

/** Route guard: 401 without an actor, 403 when the role is too low. */
export function requireRole(role: Role): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!req.actor) {
      next(new PanelHttpError(401, 'unauthenticated', 'Authentication required.'));
      return;
    }
    if (!roleAtLeast(req.actor.role, role)) {
      next(
        new PanelHttpError(
          403,
          'permission-denied',
          `This needs the ${role} role; you are ${req.actor.role}.`,
        ),
      );
      return;
    }
    next();
  };
}
