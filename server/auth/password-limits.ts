import type { Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { renderPage } from '../http/render.ts';
import type { PanelContext } from '../context.ts';

const WINDOW_MS = 15 * 60_000;
/** Wrong current passwords allowed per signed-in user, and per client address, per window. */
export const PASSWORD_CHANGE_LIMITS = { perUser: 5, perAddress: 10, windowMinutes: WINDOW_MS / 60_000 };

/** Marks this response as a wrong-current-password attempt (what the limits count). */
export function wrongCurrentPassword(res: Response): void {
  res.locals.wrongCurrentPassword = true;
}

/**
 * Throttles `POST /account/password`, which checks the current password and so would otherwise
 * be a password oracle for anyone holding a session: only wrong current passwords count, per
 * user (whoever holds their sessions, from wherever) and per address (many sessions from one
 * place). A refused attempt is audited.
 */
export function passwordChangeLimits(ctx: PanelContext): RequestHandler[] {
  const refuse = (req: Request, res: Response): void => {
    if (req.actor)
      ctx.audit.write({
        actor: req.actor,
        hostId: null,
        action: 'user passwd',
        params: { username: req.actor.name },
        ok: false,
        errorCode: 'rate-limited',
        message: 'too many wrong current passwords',
      });
    res.status(429);
    renderPage(req, res, 'account-password', {
      title: 'Change password',
      mustChange: false,
      error: `Too many wrong current passwords. Wait ${PASSWORD_CHANGE_LIMITS.windowMinutes} minutes and try again.`,
    });
  };
  const common = {
    windowMs: WINDOW_MS,
    standardHeaders: 'draft-8' as const,
    legacyHeaders: false,
    requestWasSuccessful: (_req: Request, res: Response) => res.locals.wrongCurrentPassword !== true,
    skipSuccessfulRequests: true,
    handler: refuse,
  };
  return [
    rateLimit({
      ...common,
      limit: PASSWORD_CHANGE_LIMITS.perUser,
      keyGenerator: (req) => `user:${req.actor?.userId ?? 'none'}`,
    }),
    rateLimit({ ...common, limit: PASSWORD_CHANGE_LIMITS.perAddress }),
  ];
}
