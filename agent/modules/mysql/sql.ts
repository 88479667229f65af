import { createHash } from 'node:crypto';

/**
 * SQL text building for the mysql module. Injection-proof by construction:
 * - identifiers come from shared/validate/mysql.ts (letters, digits, `_`, and for user names
 *   `.` and `-`; host patterns: digits, dots, `%`, `/`, `:` and hex letters), AND every quoting
 *   function below re-checks that alphabet and throws otherwise, before quoting with backticks;
 * - passwords never appear in SQL text: MariaDB cannot bind `IDENTIFIED BY ?` in a prepared
 *   statement, so the agent sends `IDENTIFIED BY PASSWORD '<hash>'` where the hash is computed here
 *   and is `*` + 40 hex digits (nothing else can reach the statement);
 * - every other value is a `?` parameter.
 */

export class UnsafeIdentifierError extends Error {
  constructor(what: string) {
    super(`refused to quote an unsafe ${what}`);
    this.name = 'UnsafeIdentifierError';
  }
}

const SAFE_NAME = /^[A-Za-z0-9_]{1,64}$/;
const SAFE_USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
const SAFE_HOST = /^(?:localhost|%|[0-9A-Fa-f.:%/]{1,60})$/;
const SAFE_HASH = /^\*[0-9A-F]{40}$/;

const backtick = (s: string): string => `\`${s.replaceAll('`', '``')}\``;

/** `db` quoted as an identifier (for CREATE / DROP DATABASE). */
export function quoteDb(name: string): string {
  if (!SAFE_NAME.test(name)) throw new UnsafeIdentifierError('database name');
  return backtick(name);
}

/**
 * `db`.* for GRANT / REVOKE. In grant statements `_` and `%` in a database name are wildcards, so a
 * grant on `shop_1` would also cover `shopX1`: `_` is escaped as `\_` to grant exactly one database.
 */
export function grantTarget(name: string): string {
  if (!SAFE_NAME.test(name)) throw new UnsafeIdentifierError('database name');
  return `${backtick(name.replaceAll('_', '\\_'))}.*`;
}

/**
 * A grant target from a stored `mysql.db` row (which may be escaped or not); used to revoke exactly
 * what is stored. Same alphabet plus the backslash of an escaped `_`.
 */
export function storedGrantTarget(storedDb: string): string {
  if (!/^(?:[A-Za-z0-9]|\\_|_){1,128}$/.test(storedDb)) throw new UnsafeIdentifierError('database pattern');
  return `${backtick(storedDb)}.*`;
}

/** Turns a stored grant pattern (`shop\_1`) back into the database name (`shop_1`). */
export const unescapeGrantDb = (stored: string): string => stored.replace(/\\([_%\\])/g, '$1');

/** `user`@`host`. */
export function quoteAccount(user: string, host: string): string {
  if (!SAFE_USER.test(user)) throw new UnsafeIdentifierError('user name');
  if (!SAFE_HOST.test(host)) throw new UnsafeIdentifierError('host pattern');
  return `${backtick(user)}@${backtick(host)}`;
}

/** The mysql_native_password hash of a password: `*` + upper-case hex of SHA1(SHA1(utf8 bytes)). */
export function nativePasswordHash(password: string): string {
  const inner = createHash('sha1').update(Buffer.from(password, 'utf8')).digest();
  return `*${createHash('sha1').update(inner).digest('hex').toUpperCase()}`;
}

/** `IDENTIFIED BY PASSWORD '<hash>'` for a password (the plain password never leaves the agent). */
export function identifiedBy(password: string): string {
  return identifiedByHash(nativePasswordHash(password));
}

/** Same, from a stored hash (used to restore a snapshot). */
export function identifiedByHash(hash: string): string {
  if (!SAFE_HASH.test(hash)) throw new UnsafeIdentifierError('password hash');
  return `IDENTIFIED BY PASSWORD '${hash}'`;
}

export const isNativeHash = (s: string): boolean => SAFE_HASH.test(s);

/** Privilege names are from the allow-list (upper-case words); re-checked before joining. */
export function privilegeList(privs: readonly string[]): string {
  if (privs.length === 0 || !privs.every((p) => /^[A-Z]+(?: [A-Z]+)*$/.test(p)))
    throw new UnsafeIdentifierError('privilege list');
  return privs.join(', ');
}
