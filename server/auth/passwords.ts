import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });

/** scrypt cost (OWASP: N=2^17 r=8 p=1 is the high end; 2^15 keeps a login under ~100 ms on small VMs). */
const N = 2 ** 15;
const R = 8;
const P = 1;
const KEYLEN = 64;
const MAXMEM = 256 * 1024 * 1024;

export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 256;

/** Why a new password is not acceptable, or null. */
export function passwordProblem(pw: unknown): string | null {
  if (typeof pw !== 'string') return 'A password is required.';
  if (pw.length < PASSWORD_MIN) return `The password must be at least ${PASSWORD_MIN} characters long.`;
  if (pw.length > PASSWORD_MAX) return `The password must be at most ${PASSWORD_MAX} characters long.`;
  if (pw.includes('\0')) return 'The password must not contain NUL characters.';
  return null;
}

/** `scrypt$N$r$p$salt$hash` (base64url parts). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password.normalize('NFC'), salt, KEYLEN, { N, r: R, p: P, maxmem: MAXMEM });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Constant-time check of a password against a stored hash; false for any malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0) || n > 2 ** 20) return false;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const expected = Buffer.from(parts[5] ?? '', 'base64url');
  if (salt.length < 8 || expected.length < 32) return false;
  const key = await scrypt(password.normalize('NFC'), salt, expected.length, {
    N: n,
    r,
    p,
    maxmem: MAXMEM,
  });
  return timingSafeEqual(key, expected);
}

/** A random password for generated accounts (base64url, ~120 bits). */
export const randomPassword = (): string => randomBytes(15).toString('base64url');

/** A hash that never verifies (used to keep login timing equal for unknown users). */
let dummy: string | null = null;
export async function dummyHash(): Promise<string> {
  dummy ??= await hashPassword(randomPassword());
  return dummy;
}
