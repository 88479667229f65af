import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { atomicWrite, resolveRealUnder } from '../../os/files.ts';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { placeholderPage } from './vhost.ts';

/** Who owns site trees: www-data (the FTP module derives its users' uid/gid from this). */
export interface Owner {
  uid: number;
  gid: number;
}

/** A line of /etc/passwd. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

/** Looks up a user in /etc/passwd (read as data, never through a shell). */
export async function readPasswdEntry(name: string, passwdFile = '/etc/passwd'): Promise<PasswdEntry | null> {
  let text: string;
  try {
    text = await fsp.readFile(passwdFile, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) return null;
    return { name, uid, gid, gecos: f[4] ?? '', home: f[5] ?? '', shell: f[6] ?? '' };
  }
  return null;
}

/** A user's uid and gid, or null when the user does not exist. */
export async function lookupUser(name: string, passwdFile = '/etc/passwd'): Promise<Owner | null> {
  const e = await readPasswdEntry(name, passwdFile);
  return e === null ? null : { uid: e.uid, gid: e.gid };
}

/**
 * The owner for new site trees: www-data when the agent runs as root, else the agent's own user
 * (a non-root sandbox cannot chown; its Apache then runs as that user too).
 */
export async function siteOwner(): Promise<Owner | null> {
  if (process.getuid?.() !== 0) return null;
  const www = await lookupUser('www-data');
  if (!www) throw new Error('the user www-data does not exist on this host');
  return www;
}

export interface SitePaths {
  siteDir: string;
  docroot: string;
  logDir: string;
}

/** The paths of a site, through the path guard (the domain is validated, this is defence in depth). */
export async function sitePaths(wwwRoot: string, domain: string): Promise<SitePaths> {
  const siteDir = await resolveRealUnder(wwwRoot, domain);
  if (siteDir !== path.join(await fsp.realpath(wwwRoot), domain))
    throw new RpcError(
      'failed-precondition',
      `The site directory of ${domain} is a symbolic link; PonIO does not follow it.`,
    );
  return { siteDir, docroot: path.join(siteDir, 'public_html'), logDir: path.join(siteDir, 'logs') };
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Creates `<site>/`, `<site>/public_html/` (owned by the site owner) and `<site>/logs/` (owned by
 * root: Apache's parent opens logs as root, so a site owner must not be able to plant symlinks
 * there), plus a placeholder index page when the docroot has no index yet. Existing directories
 * (a site deleted earlier without removing its files) are reused, never emptied. Returns what it
 * created, so a rollback removes exactly that.
 */
export async function createSiteTree(
  paths: SitePaths,
  domain: string,
  displayName: string,
  owner: Owner | null,
): Promise<string[]> {
  const created: string[] = [];
  const dirs: Array<[string, number, boolean]> = [
    [paths.siteDir, 0o755, true],
    [paths.docroot, 0o755, true],
    [paths.logDir, 0o750, false],
  ];
  try {
    for (const [dir, mode, ownedBySite] of dirs) {
      const st = await lstatOrNull(dir);
      if (st && !st.isDirectory())
        throw new RpcError(
          'failed-precondition',
          `${dir} exists and is not a directory; move it away before creating ${domain}.`,
        );
      if (!st) {
        await fsp.mkdir(dir, { mode });
        created.push(dir);
        await fsp.chmod(dir, mode);
        if (owner && ownedBySite) await fsp.chown(dir, owner.uid, owner.gid);
      }
    }
    const entries = await fsp.readdir(paths.docroot);
    if (!entries.some((e) => /^index\./i.test(e))) {
      const index = path.join(paths.docroot, 'index.html');
      await atomicWrite(index, placeholderPage(domain, displayName), {
        mode: 0o644,
        ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      });
      created.push(index);
    }
  } catch (e) {
    await removeCreated(created);
    throw e;
  }
  return created;
}

/** Removes what createSiteTree created (newest first). */
export async function removeCreated(created: readonly string[]): Promise<void> {
  for (const p of [...created].reverse()) await fsp.rm(p, { recursive: true, force: true });
}

/** Removes a whole site tree (delete website with removeFiles). */
export async function removeSiteTree(paths: SitePaths): Promise<boolean> {
  const st = await lstatOrNull(paths.siteDir);
  if (!st) return false;
  if (!st.isDirectory())
    throw new RpcError('failed-precondition', `${paths.siteDir} is not a directory; left untouched.`);
  await fsp.rm(paths.siteDir, { recursive: true, force: true });
  return true;
}
