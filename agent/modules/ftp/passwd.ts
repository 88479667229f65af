/**
 * The proftpd `AuthUserFile`: passwd(5) format, one user per line,
 * `name:hash:uid:gid:gecos:home:shell`. Pure code (no I/O): parsed into data, changed as data,
 * written back by code. Lines PonIO does not understand (comments, hand-written oddities) are
 * kept verbatim and in place, so an admin's own entries survive every rewrite.
 */

export interface PasswdUser {
  username: string;
  /** crypt(3) hash; a leading `!` marks a disabled (locked) user, as passwd -l does. */
  hash: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export type PasswdLine = { kind: 'user'; user: PasswdUser } | { kind: 'other'; text: string };

export const LOCK_PREFIX = '!';
/** The GECOS field PonIO writes, to tell its own entries apart in the file. */
export const PONIO_GECOS = 'ponio';
/** RequireValidShell is off; the shell field is informational. */
export const FTP_SHELL = '/usr/sbin/nologin';

const FIELD_FORBIDDEN = /[:\n\r\0]/;

export const isEnabled = (u: PasswdUser): boolean => !u.hash.startsWith(LOCK_PREFIX);

export function parsePasswd(text: string): PasswdLine[] {
  const out: PasswdLine[] = [];
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (const text of lines) {
    const user = parseUserLine(text);
    out.push(user ? { kind: 'user', user } : { kind: 'other', text });
  }
  return out;
}

function parseUserLine(line: string): PasswdUser | null {
  if (line.trim() === '' || line.trimStart().startsWith('#')) return null;
  const f = line.split(':');
  if (f.length !== 7) return null;
  const [username, hash, uid, gid, gecos, home, shell] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (username === '' || !/^[0-9]{1,10}$/.test(uid) || !/^[0-9]{1,10}$/.test(gid)) return null;
  return { username, hash, uid: Number(uid), gid: Number(gid), gecos, home, shell };
}

/** Serialises the file. Throws if a field would break the line structure (defence in depth). */
export function formatPasswd(lines: readonly PasswdLine[]): string {
  return lines.map((l) => (l.kind === 'other' ? l.text : formatUser(l.user)) + '\n').join('');
}

function formatUser(u: PasswdUser): string {
  for (const [name, value] of Object.entries({
    username: u.username,
    hash: u.hash,
    gecos: u.gecos,
    home: u.home,
    shell: u.shell,
  })) {
    if (FIELD_FORBIDDEN.test(value))
      throw new Error(`refusing to write a passwd line: ${name} contains a separator`);
  }
  if (!Number.isSafeInteger(u.uid) || u.uid < 0 || !Number.isSafeInteger(u.gid) || u.gid < 0)
    throw new Error('refusing to write a passwd line: bad uid/gid');
  return [u.username, u.hash, u.uid, u.gid, u.gecos, u.home, u.shell].join(':');
}

export const users = (lines: readonly PasswdLine[]): PasswdUser[] =>
  lines.flatMap((l) => (l.kind === 'user' ? [l.user] : []));

export const findUser = (lines: readonly PasswdLine[], username: string): PasswdUser | undefined =>
  users(lines).find((u) => u.username === username);

/** Returns new lines with `username`'s entry replaced by `change(entry)` (or removed if null). */
export function updateUser(
  lines: readonly PasswdLine[],
  username: string,
  change: (u: PasswdUser) => PasswdUser | null,
): PasswdLine[] {
  const out: PasswdLine[] = [];
  for (const l of lines) {
    if (l.kind === 'user' && l.user.username === username) {
      const next = change(l.user);
      if (next) out.push({ kind: 'user', user: next });
    } else out.push(l);
  }
  return out;
}

export const lockHash = (hash: string): string => (hash.startsWith(LOCK_PREFIX) ? hash : LOCK_PREFIX + hash);
export const unlockHash = (hash: string): string => {
  let h = hash;
  while (h.startsWith(LOCK_PREFIX)) h = h.slice(1);
  return h;
};
