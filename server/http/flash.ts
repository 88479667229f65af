import type { Request } from 'express';
import type { FlashKind, FlashMessage } from '../auth/sessions.ts';

/** Queues a message shown on the next rendered page (after a POST → 303 redirect). */
export function setFlash(req: Request, kind: FlashKind, message: string): void {
  const s = req.session;
  if (!s) return;
  s.data.flash = [...s.data.flash.slice(-4), { kind, message: message.slice(0, 2000) }];
  s.save();
}

/** Takes (and clears) the queued messages. */
export function takeFlash(req: Request): FlashMessage[] {
  const s = req.session;
  if (!s || s.data.flash.length === 0) return [];
  const f = s.data.flash;
  s.data.flash = [];
  s.save();
  return f;
}
