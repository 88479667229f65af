import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { readCookie } from './sessions.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The CSRF token for a page shown before sign-in (no session): see preloginToken. */
      preloginCsrf?: string;
    }
  }
}

/** The pre-login nonce cookie (`__Host-`: Secure, Path=/, no Domain; nothing is stored server-side). */
export const PRELOGIN_COOKIE = '__Host-ponio_pre';

const mac = (key: Buffer, nonce: string): string =>
  createHmac('sha256', key).update(`prelogin-csrf\0${nonce}`).digest('base64url');

/**
 * Stateless CSRF protection for the sign-in and setup forms, so an anonymous visitor costs the
 * panel no session row: the browser holds a random nonce in a cookie, the form carries
 * HMAC(panel key, nonce). A cross-site page can neither read the form's token nor set a
 * `__Host-` cookie, and without the panel's key no token can be made for a nonce of one's own.
 * Sets the cookie when missing and req.preloginCsrf (what pageLocals puts into the form).
 */
export function preloginToken(req: Request, res: Response, key: Buffer): string {
  let nonce = readCookie(req.headers.cookie, PRELOGIN_COOKIE);
  if (!nonce) {
    nonce = randomBytes(32).toString('base64url');
    res.cookie(PRELOGIN_COOKIE, nonce, { httpOnly: true, secure: true, sameSite: 'lax', path: '/' });
  }
  req.preloginCsrf = mac(key, nonce);
  return req.preloginCsrf;
}

/** True when `token` is the pre-login token for the request's nonce cookie (constant time). */
export function checkPreloginToken(req: Request, key: Buffer, token: unknown): boolean {
  const nonce = readCookie(req.headers.cookie, PRELOGIN_COOKIE);
  if (!nonce || typeof token !== 'string') return false;
  const want = Buffer.from(mac(key, nonce));
  const got = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
}
