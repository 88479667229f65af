import { describeInput, hasControlChars, invalid, valid, type Validated } from './result.ts';
import { validateCidr, validateIp } from './network.ts';

/**
 * MySQL/MariaDB names and values (one source of truth for panel and agent).
 *
 * Names are restricted to a small, quote-free alphabet so they can never change the meaning of a
 * statement, and the agent still quotes them (defence in depth). Passwords are never put in SQL
 * text at all: the agent sends only their hash (see agent/modules/mysql/sql.ts).
 */

/** Schemas that belong to the server itself: never created, dropped or granted through PonIO. */
export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'] as const;

/**
 * Accounts that belong to the server or the distribution: never created, changed or dropped
 * through PonIO (compared case-insensitively). The agent's configured admin account is added at
 * run time.
 */
export const RESERVED_USERS = [
  'root',
  'mysql',
  'mariadb.sys',
  'mysql.sys',
  'mysql.session',
  'mysql.infoschema',
  'debian-sys-maint',
  'public',
] as const;

export const DB_NAME_MAX = 64;
/** MariaDB accepts 80, MySQL 32: PonIO keeps to 32 so accounts work on both. */
export const DB_USER_MAX = 32;
export const DB_PASSWORD_MIN = 8;
export const DB_PASSWORD_MAX = 128;

const NAME_RE = /^[A-Za-z0-9_]+$/;
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Validates a database name: letters, digits and underscores, 1–64, not a system schema. */
export function validateDatabaseName(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('A database name must be a string.');
  if (input.length === 0) return invalid('The database name is empty.');
  if (input.length > DB_NAME_MAX)
    return invalid(`The database name is too long (at most ${DB_NAME_MAX} characters).`);
  if (hasControlChars(input)) return invalid('The database name contains control characters or line breaks.');
  if (!NAME_RE.test(input))
    return invalid(
      `The database name ${describeInput(input)} may contain only letters a–z, A–Z, digits and underscores.`,
    );
  if (/^[0-9]+$/.test(input))
    return invalid(`The database name ${describeInput(input)} cannot be only digits.`);
  if ((SYSTEM_SCHEMAS as readonly string[]).includes(input.toLowerCase()))
    return invalid(`${describeInput(input)} is a system schema of the server; PonIO does not touch it.`);
  return valid(input);
}

/** Validates a database account name: letters, digits, `_`, `.`, `-`, 1–32, not a reserved account. */
export function validateDatabaseUser(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('A database user name must be a string.');
  if (input.length === 0) return invalid('The database user name is empty.');
  if (input.length > DB_USER_MAX)
    return invalid(`The database user name is too long (at most ${DB_USER_MAX} characters).`);
  if (hasControlChars(input))
    return invalid('The database user name contains control characters or line breaks.');
  if (!USER_RE.test(input))
    return invalid(
      `The database user name ${describeInput(input)} may contain only letters, digits, "_", "." and "-" (and must not start with "." or "-").`,
    );
  if ((RESERVED_USERS as readonly string[]).includes(input.toLowerCase()))
    return invalid(`${describeInput(input)} is a reserved account of the server; PonIO does not touch it.`);
  return valid(input);
}

const prefixToMask = (prefix: number): string => {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => String((bits >>> s) & 255)).join('.');
};

const maskToPrefix = (mask: string): number | null => {
  const ip = validateIp(mask);
  if (!ip.ok || ip.value.version !== 4) return null;
  for (let p = 0; p <= 32; p++) if (prefixToMask(p) === ip.value.address) return p;
  return null;
};

/**
 * Validates the host part of an account and returns it in the form the server stores:
 * `localhost`, `%` (any host), an IPv4/IPv6 address, an IPv4 network written `10.0.0.0/24` or
 * `10.0.0.0/255.255.255.0` (stored as the netmask form MariaDB understands), or an IPv4 prefix
 * with a trailing wildcard like `192.168.1.%`. Host names are refused (the server may run with
 * skip-name-resolve, and names are spoofable).
 */
export function validateHostPattern(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('A host pattern must be a string.');
  if (input.length === 0) return invalid('The host pattern is empty.');
  if (input.length > 60 || hasControlChars(input) || /\s/.test(input))
    return invalid(`${describeInput(input)} is not a host pattern.`);
  const help = 'use localhost, %, an IP address, a network like 10.0.0.0/24, or 192.168.1.%';
  if (input === 'localhost' || input === '%') return valid(input);
  const wildcard = /^((?:[0-9]{1,3}\.){1,3})%$/.exec(input);
  if (wildcard?.[1] !== undefined) {
    const octets = wildcard[1].slice(0, -1).split('.');
    if (octets.some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0'))))
      return invalid(`${describeInput(input)} is not a host pattern: ${help}.`);
    return valid(input);
  }
  const slash = input.indexOf('/');
  if (slash >= 0) {
    const addr = input.slice(0, slash);
    const maskText = input.slice(slash + 1);
    let prefixText = maskText;
    if (maskText.includes('.')) {
      const p = maskToPrefix(maskText);
      if (p === null)
        return invalid(`The netmask in ${describeInput(input)} is not a contiguous IPv4 netmask.`);
      prefixText = String(p);
    }
    const cidr = validateCidr(`${addr}/${prefixText}`);
    if (!cidr.ok) return invalid(cidr.message);
    if (cidr.value.version !== 4)
      return invalid(
        `${describeInput(input)}: IPv6 networks are not supported by the server; give one IPv6 address.`,
      );
    if (cidr.value.prefix === 32) return valid(cidr.value.address);
    if (cidr.value.prefix === 0) return valid('%');
    return valid(`${cidr.value.address}/${prefixToMask(cidr.value.prefix)}`);
  }
  const ip = validateIp(input);
  if (ip.ok) return valid(ip.value.address);
  return invalid(`${describeInput(input)} is not a host pattern: ${help}.`);
}

/** Validates a new password: 8–128 characters, no control characters (NUL, line breaks…). */
export function validateDatabasePassword(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('The password must be a string.');
  if (input.length < DB_PASSWORD_MIN)
    return invalid(`The password is too short (at least ${DB_PASSWORD_MIN} characters).`);
  if (input.length > DB_PASSWORD_MAX)
    return invalid(`The password is too long (at most ${DB_PASSWORD_MAX} characters).`);
  // Never echo any part of a password in a message.
  if (hasControlChars(input))
    return invalid('The password contains control characters (such as NUL or a line break).');
  if (input.normalize('NFC') !== input)
    return invalid('The password is not in Unicode normal form C; retype it or use plain characters.');
  return valid(input);
}

/** Database-level privileges PonIO may grant (never GRANT OPTION, FILE, SUPER or other global ones). */
export const DB_PRIVILEGES = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'INDEX',
  'ALTER',
  'REFERENCES',
  'CREATE TEMPORARY TABLES',
  'LOCK TABLES',
  'EXECUTE',
  'CREATE VIEW',
  'SHOW VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'EVENT',
  'TRIGGER',
] as const;
export type DbPrivilege = (typeof DB_PRIVILEGES)[number];

/** What `read-only` means. */
export const READ_ONLY_PRIVILEGES: readonly DbPrivilege[] = ['SELECT', 'SHOW VIEW'];

export type PrivilegeSet = 'all' | 'read-only' | readonly string[];

/**
 * Resolves a privilege set (`all`, `read-only`, or a list from DB_PRIVILEGES, written in any case
 * with spaces, `_` or `-`) to a sorted, de-duplicated list of allowed privilege names.
 */
export function validatePrivileges(input: unknown): Validated<DbPrivilege[]> {
  if (input === 'all') return valid([...DB_PRIVILEGES]);
  if (input === 'read-only') return valid([...READ_ONLY_PRIVILEGES]);
  if (!Array.isArray(input) || input.length === 0)
    return invalid('Privileges must be "all", "read-only" or a non-empty list of privileges.');
  if (input.length > DB_PRIVILEGES.length * 2) return invalid('The list of privileges is too long.');
  const out = new Set<DbPrivilege>();
  for (const p of input) {
    if (typeof p !== 'string' || p.length > 40 || hasControlChars(p))
      return invalid('Each privilege must be a short name such as SELECT or "CREATE VIEW".');
    const norm = p.trim().toUpperCase().replace(/[_-]+/g, ' ').replace(/\s+/g, ' ');
    const known = DB_PRIVILEGES.find((x) => x === norm);
    if (!known)
      return invalid(
        `${describeInput(p)} is not a privilege PonIO grants; allowed: ${DB_PRIVILEGES.join(', ')}.`,
      );
    out.add(known);
  }
  return valid(DB_PRIVILEGES.filter((x) => out.has(x)));
}

/** Character sets offered for new databases, with their collations (the first is the default). */
export const CHARSETS = {
  utf8mb4: ['utf8mb4_unicode_ci', 'utf8mb4_general_ci', 'utf8mb4_bin', 'utf8mb4_unicode_520_ci'],
  utf8mb3: ['utf8mb3_unicode_ci', 'utf8mb3_general_ci', 'utf8mb3_bin'],
  latin1: ['latin1_swedish_ci', 'latin1_general_ci', 'latin1_bin'],
  ascii: ['ascii_general_ci', 'ascii_bin'],
} as const satisfies Record<string, readonly string[]>;
export type Charset = keyof typeof CHARSETS;
export const DEFAULT_CHARSET: Charset = 'utf8mb4';

/**
 * Resolves charset + collation from the allow-list. Either may be omitted: the charset defaults to
 * utf8mb4 (or the collation's charset), the collation to the charset's first one.
 */
export function validateCharset(
  charset: unknown,
  collation: unknown,
): Validated<{ charset: Charset; collation: string }> {
  const names = Object.keys(CHARSETS) as Charset[];
  let cs: Charset | undefined;
  if (charset !== undefined) {
    if (typeof charset !== 'string') return invalid('The character set must be a string.');
    cs = names.find((n) => n === charset.toLowerCase());
    if (!cs)
      return invalid(
        `${describeInput(charset)} is not an offered character set; use one of ${names.join(', ')}.`,
      );
  }
  if (collation === undefined) {
    const c = cs ?? DEFAULT_CHARSET;
    return valid({ charset: c, collation: CHARSETS[c][0] });
  }
  if (typeof collation !== 'string') return invalid('The collation must be a string.');
  const col = collation.toLowerCase();
  const owner = names.find((n) => (CHARSETS[n] as readonly string[]).includes(col));
  if (!owner) return invalid(`${describeInput(collation)} is not an offered collation.`);
  if (cs !== undefined && owner !== cs)
    return invalid(`The collation ${col} does not belong to the character set ${cs}.`);
  return valid({ charset: owner, collation: col });
}
