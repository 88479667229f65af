import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { Exec } from '../../os/exec.ts';
import { outputOf } from './apache-config.ts';
import { siteUserComment, SITE_USER_PREFIX } from './php-pool.ts';
import { readPasswdEntry, type Owner, type PasswdEntry } from './site-tree.ts';

export { readPasswdEntry, type PasswdEntry };

/**
 * The site's own system user (issue 20: "files belong to the site"): made by `useradd --system`
 * with no shell (/usr/sbin/nologin), no password (useradd locks it) and the site directory as
 * home; its name starts with `ponio-` and its GECOS says `PonIO site <domain>`, the mark PonIO
 * checks before it ever changes or removes a user.
 */

/** Whether `e` is the user PonIO made for `domain`. */
export const isSiteUser = (e: PasswdEntry, domain: string): boolean =>
  e.name.startsWith(SITE_USER_PREFIX) && e.gecos === siteUserComment(domain);

/**
 * The site's user, created when missing. `created` says whether this call made it (a rollback
 * removes only what it made). A user of that name that PonIO did not make is refused.
 */
export async function ensureSiteUser(
  exec: Exec,
  name: string,
  domain: string,
  home: string,
): Promise<{ owner: Owner; created: boolean }> {
  const found = await readPasswdEntry(name);
  if (found) {
    if (!isSiteUser(found, domain))
      throw new RpcError(
        'failed-precondition',
        `A user ${name} exists on this host and was not made by PonIO for ${domain}; PonIO does not take it over.`,
      );
    return { owner: { uid: found.uid, gid: found.gid }, created: false };
  }
  const r = await exec(
    'useradd',
    [
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      home,
      '--shell',
      '/usr/sbin/nologin',
      '--comment',
      siteUserComment(domain),
      name,
    ],
    { timeoutMs: 30_000 },
  );
  if (r.code !== 0)
    throw new RpcError('failed-precondition', `Could not create the site user ${name}: ${outputOf(r)}`);
  const made = await readPasswdEntry(name);
  if (!made) throw new RpcError('internal', `useradd reported success but ${name} is not in /etc/passwd.`);
  return { owner: { uid: made.uid, gid: made.gid }, created: true };
}

/** Removes the site's user (and its group) if it is PonIO's; a missing user is fine. */
export async function removeSiteUser(exec: Exec, name: string, domain: string): Promise<void> {
  const found = await readPasswdEntry(name);
  if (!found || !isSiteUser(found, domain)) return;
  const r = await exec('userdel', [name], { timeoutMs: 30_000 });
  // 6: no such user (someone else removed it meanwhile).
  if (r.code !== 0 && r.code !== 6)
    throw new RpcError('failed-precondition', `Could not remove the site user ${name}: ${outputOf(r)}`);
}

/**
 * Hands a site tree to `owner` (the site directory, public_html and everything below, tmp),
 * never following symlinks (lchown) and leaving `logs/` (root's) alone. Idempotent: a crashed
 * run is simply run again.
 */
export async function chownSiteTree(
  siteDir: string,
  owner: Owner,
  group: number,
  skip: ReadonlySet<string>,
): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const ent of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, ent.name);
      if (skip.has(p)) continue;
      await fsp.lchown(p, owner.uid, group);
      if (ent.isDirectory()) await walk(p);
    }
  };
  await fsp.lchown(siteDir, owner.uid, group);
  await walk(siteDir);
}
