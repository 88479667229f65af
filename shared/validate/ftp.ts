import { describeInput, hasControlChars, invalid, valid, type Validated } from './result.ts';

/** Longest FTP user name (`bob@example.com`-style names need more than the classic 32). */
export const FTP_USERNAME_MAX = 64;
export const FTP_PASSWORD_MIN = 8;
export const FTP_PASSWORD_MAX = 128;
/** Longest home path accepted (well under PATH_MAX; it ends up in a passwd(5) line). */
export const FTP_HOME_MAX = 1024;

const USERNAME = /^[a-z0-9_][a-z0-9._@-]*$/;

/**
 * Names that must never become virtual FTP users: they are (or usually are) system accounts, or
 * mean something special to FTP servers. The agent also refuses any name in the host's /etc/passwd.
 */
export const RESERVED_FTP_USERNAMES: ReadonlySet<string> = new Set([
  'root',
  'admin',
  'administrator',
  'anonymous',
  'ftp',
  'proftpd',
  'www-data',
  'nobody',
  'daemon',
  'bin',
  'sys',
  'sync',
  'mail',
  'postmaster',
  'mysql',
  'sshd',
]);

/**
 * Validates a virtual FTP user name. The name lands in a passwd(5)-format file, so anything that
 * could split or forge a line is refused: `:`, `/`, white space, control characters (newline,
 * NUL), a leading `-` or `.`, non-ASCII letters (look-alikes such as Cyrillic `а`), upper case
 * (user names are case-sensitive in the file; one spelling avoids `Bob` vs `bob` twins).
 * Allowed: a–z, 0–9, `_`, and inside the name `.`, `-`, `@` — at most 64 characters.
 */
export function validateFtpUsername(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('The FTP user name must be a string.');
  if (input.length === 0) return invalid('The FTP user name is empty.');
  if (input.length > FTP_USERNAME_MAX)
    return invalid(`The FTP user name is too long (at most ${FTP_USERNAME_MAX} characters).`);
  if (hasControlChars(input)) return invalid('The FTP user name contains control characters or line breaks.');
  if (input.includes(':')) return invalid(`The FTP user name ${describeInput(input)} contains ":".`);
  if (input.includes('/')) return invalid(`The FTP user name ${describeInput(input)} contains "/".`);
  if (/\s/.test(input)) return invalid(`The FTP user name ${describeInput(input)} contains white space.`);
  if (input.startsWith('-') || input.startsWith('.'))
    return invalid(`The FTP user name ${describeInput(input)} may not start with "-" or ".".`);
  if (/[A-Z]/.test(input))
    return invalid(`The FTP user name ${describeInput(input)} has upper-case letters; use lower case.`);
  if (!USERNAME.test(input))
    return invalid(
      `The FTP user name ${describeInput(input)} contains characters that are not allowed (only a–z, 0–9, "_", ".", "-" and "@").`,
    );
  if (input.endsWith('.')) return invalid(`The FTP user name ${describeInput(input)} may not end with ".".`);
  if (RESERVED_FTP_USERNAMES.has(input))
    return invalid(`"${input}" is reserved for a system account; pick another FTP user name.`);
  return valid(input);
}

/**
 * Validates a new FTP password: 8–128 characters, no control characters (a line break would let
 * one password become two lines for the hashing program). Any other Unicode is fine.
 */
export function validateFtpPassword(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('The password must be a string.');
  if ([...input].length < FTP_PASSWORD_MIN)
    return invalid(`The password is too short (at least ${FTP_PASSWORD_MIN} characters).`);
  if ([...input].length > FTP_PASSWORD_MAX)
    return invalid(`The password is too long (at most ${FTP_PASSWORD_MAX} characters).`);
  if (hasControlChars(input)) return invalid('The password contains control characters or line breaks.');
  return valid(input);
}

/**
 * Validates the shape of an FTP home directory: an absolute, already-normal path (no `.`/`..`
 * segments, no `//`, no trailing `/`), without control characters or `:` (it becomes a field of a
 * passwd(5) line), at most 1024 characters. Whether it lies inside a website or the FTP root, and
 * whether symlinks escape, is checked by the agent against the real file system.
 */
export function validateFtpHome(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('The home directory must be a string.');
  if (input.length === 0) return invalid('The home directory is empty.');
  if (input.length > FTP_HOME_MAX)
    return invalid(`The home directory path is too long (at most ${FTP_HOME_MAX} characters).`);
  if (hasControlChars(input))
    return invalid('The home directory contains control characters or line breaks.');
  if (!input.startsWith('/'))
    return invalid(
      `The home directory ${describeInput(input)} must be an absolute path (starting with "/").`,
    );
  if (input.includes(':')) return invalid(`The home directory ${describeInput(input)} contains ":".`);
  const trimmed = input.length > 1 && input.endsWith('/') ? input.slice(0, -1) : input;
  const segments = trimmed.split('/').slice(1);
  if (segments.some((s) => s === '..' || s === '.'))
    return invalid(`The home directory ${describeInput(input)} contains "." or ".." segments.`);
  if (segments.some((s) => s === ''))
    return invalid(`The home directory ${describeInput(input)} contains an empty segment ("//").`);
  if (segments.some((s) => s.length > 255))
    return invalid(`A directory name in ${describeInput(input)} is longer than 255 characters.`);
  if (/[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/u.test(trimmed))
    return invalid(`The home directory ${describeInput(input)} contains invisible or unusual characters.`);
  return valid(trimmed);
}
