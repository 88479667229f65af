import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { readCookie } from './sessions.ts';
import type { UserRow } from './users.ts';

/** The cookie between the password and the second factor (`__Host-`: Secure, Path=/, no Domain). */
export const PENDING_COOKIE = '__Host-ponio_2fa';
export const PENDING_TTL_MS = 5 * 60_000;

// Truncated to 128 bits: the cookie must fit readCookie's token shape (base64url, ≤ 100 chars).
const mac = (key: Buffer, body: string): string =>
  createHmac('sha256', key).update(`pending-2fa\0${body}`).digest().subarray(0, 16).toString('base64url');

/**
 * "Password right, second factor still to come", held by the browser as a MAC'd cookie (no
 * session row before sign-in): user id, expiry (5 minutes) and the password's change time, so a
 * password reset in between voids it. It gives nothing but the second-factor form.
 */
export function setPending(
  res: Response,
  key: Buffer,
  user: Pick<UserRow, 'id' | 'password_changed_at'>,
): void {
  const body = `${user.id}.${Date.now() + PENDING_TTL_MS}.${user.password_changed_at ?? 0}`;
  res.cookie(PENDING_COOKIE, Buffer.from(`${body}.${mac(key, body)}`).toString('base64url'), {
    httpOnly: true,
    secure: true,
    sameSite: 'lax',
    path: '/',
    maxAge: PENDING_TTL_MS,
  });
}

export function clearPending(res: Response): void {
  res.clearCookie(PENDING_COOKIE, { httpOnly: true, secure: true, sameSite: 'lax', path: '/' });
}

/** The user id of a live pending sign-in, checked against the user's current password time. */
export function readPending(
  req: Request,
  key: Buffer,
  userOf: (id: number) => Pick<UserRow, 'password_changed_at' | 'disabled'> | null,
): number | null {
  const raw = readCookie(req.headers.cookie, PENDING_COOKIE);
  if (!raw) return null;
  const parts = Buffer.from(raw, 'base64url').toString('utf8').split('.');
  if (parts.length !== 4) return null;
  const [id, exp, pw, tag] = parts as [string, string, string, string];
  const want = Buffer.from(mac(key, `${id}.${exp}.${pw}`));
  const got = Buffer.from(tag);
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  if (!/^\d{1,12}$/.test(id) || Number(exp) <= Date.now()) return null;
  const u = userOf(Number(id));
  if (!u || u.disabled === 1 || String(u.password_changed_at ?? 0) !== pw) return null;
  return Number(id);
}
