import { constants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { validateDomain } from '../../../shared/validate/domain.ts';
import { validateFtpHome } from '../../../shared/validate/ftp.ts';
import { PathGuardError, resolveRealUnder } from '../../os/files.ts';
import { findVhost } from './websites.ts';
import { killPoint } from '../../journal/kill-point.ts';
import { resourceCode } from '../../os/resource-fault.ts';

/** At most this many missing directory levels are created for a new home. */
const MAX_NEW_LEVELS = 8;

export interface ResolvedHome {
  /** Real absolute path (symlinks resolved) that goes into the user file. */
  path: string;
  uid: number;
  gid: number;
  /** Directories that do not exist yet, outermost first (created by `createHome`). */
  missing: string[];
  /** Where the home lives: a website tree (with the vhost that makes it one) or the FTP root. */
  area: { kind: 'website'; domain: string; dir: string; vhost: string } | { kind: 'ftp-root'; dir: string };
}

/** Where homes may be on this host. */
export interface HomeRoots {
  wwwRoot: string;
  ftpRoot: string;
  /** Apache's sites-available: `<wwwRoot>/<domain>` is a website's tree only with a vhost for it here. */
  sitesAvailable: string;
}

const bad = (message: string): RpcError => new RpcError('invalid-argument', message);
const precondition = (message: string): RpcError => new RpcError('failed-precondition', message);

/** Strict inside test with a trailing separator: `/var/www/a.com.evil` is not inside `/var/www/a.com`. */
export const isStrictlyInside = (root: string, candidate: string): boolean => {
  const r = root.endsWith(path.sep) ? root : root + path.sep;
  return candidate.startsWith(r) && candidate.length > r.length;
};

async function lstatOrNull(p: string) {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Resolves a requested FTP home (already shape-checked by validateFtpHome) against the real file
 * system. It must lie inside a website's tree (`<wwwRoot>/<domain>/…`, the website directory
 * itself allowed, where `<domain>` has a vhost in sites-available — leftovers of a deleted site or
 * a directory made by hand do not count) or strictly inside the FTP root; symlinks may not lead out
 * of that website (or the FTP root). uid/gid: for a website, the site's owner (`websiteOwner`); under
 * the FTP root, the owner of the nearest existing directory. The nearest existing directory may not
 * be root's, and every directory on the way must be traversable by that uid/gid (proftpd enters
 * the home as the user).
 */
export async function resolveHome(requested: string, roots: HomeRoots): Promise<ResolvedHome> {
  const wwwRoot = path.resolve(roots.wwwRoot);
  const ftpRoot = path.resolve(roots.ftpRoot);
  const home = path.resolve(requested);
  let area: ResolvedHome['area'];
  let base: string;
  let rest: string;
  if (isStrictlyInside(wwwRoot, home)) {
    const [domain = '', ...more] = path.relative(wwwRoot, home).split(path.sep);
    const d = validateDomain(domain);
    if (!d.ok || d.value !== domain)
      throw bad(`${home} is not inside a website: "${domain}" under ${wwwRoot} is not a website directory.`);
    const dir = path.join(wwwRoot, domain);
    const st = await lstatOrNull(dir);
    const vhost = await findVhost(roots.sitesAvailable, domain);
    if (!vhost)
      throw bad(
        st
          ? `${dir} is not the tree of a website on this host: there is no Apache vhost for ${domain} in ` +
              `${roots.sitesAvailable} (files left by a deleted website, or a directory made by hand, cannot ` +
              `be an FTP home; create the website first, or use the FTP root ${ftpRoot}).`
          : `There is no website ${domain} on this host (no vhost for it in ${roots.sitesAvailable}).`,
      );
    if (!st || !st.isDirectory())
      throw bad(`The website ${domain} has no directory on this host (${dir} is not a directory).`);
    area = { kind: 'website', domain, dir, vhost };
    base = dir;
    rest = more.join(path.sep);
  } else if (isStrictlyInside(ftpRoot, home)) {
    const st = await lstatOrNull(ftpRoot);
    if (!st || !st.isDirectory())
      throw precondition(
        `The FTP root ${ftpRoot} does not exist; create it (owned by the FTP files' user) first.`,
      );
    area = { kind: 'ftp-root', dir: ftpRoot };
    base = ftpRoot;
    rest = path.relative(ftpRoot, home);
  } else {
    throw bad(
      `The home ${home} must be inside a website (${wwwRoot}/<domain>/…) or inside the FTP root (${ftpRoot}/…).`,
    );
  }

  let real: string;
  try {
    real = rest === '' ? await fsp.realpath(base) : await resolveRealUnder(base, rest);
  } catch (e) {
    if (e instanceof PathGuardError)
      throw bad(`The home ${home} leads outside ${base} (through a symlink or "..").`);
    throw e;
  }
  const shape = validateFtpHome(real);
  if (!shape.ok) throw bad(`The home resolves to a path that cannot be used: ${shape.message}`);

  // Walk down from the base to find the nearest existing directory and the missing levels.
  const realBase = await fsp.realpath(base);
  const missing: string[] = [];
  let existing = real;
  for (;;) {
    const st = await lstatOrNull(existing);
    if (st) {
      if (st.isSymbolicLink()) throw bad(`${existing} is a symlink; give the real directory.`);
      if (!st.isDirectory()) throw bad(`${existing} exists and is not a directory.`);
      break;
    }
    missing.unshift(existing);
    const parent = path.dirname(existing);
    if (parent === existing || !(parent === realBase || isStrictlyInside(realBase, parent)))
      throw bad(`The home ${home} is not below an existing directory of ${base}.`);
    existing = parent;
  }
  if (missing.length > MAX_NEW_LEVELS)
    throw bad(`The home ${home} would need ${missing.length} new directories (at most ${MAX_NEW_LEVELS}).`);

  const st = await fsp.stat(existing);
  if (st.uid === 0)
    throw precondition(
      `${existing} is owned by root; FTP users never act as root. Pick a directory owned by the site's user ` +
        `(for a website: its public_html) or chown it first.`,
    );
  const owner = area.kind === 'website' ? await websiteOwner(area.dir) : { uid: st.uid, gid: st.gid };
  await assertTraversable(existing, owner.uid, owner.gid);
  return { path: real, uid: owner.uid, gid: owner.gid, missing, area };
}

/**
 * The owner of a website, whom its FTP users act as: the owner of the site tree `<wwwRoot>/<domain>`
 * (the websites module creates it and its public_html owned by the site owner, www-data, and only
 * logs/ by root). A site tree set up by hand is often root's with the content elsewhere: then the
 * owner of its public_html. Never root: refused when both are root's.
 */
export async function websiteOwner(siteDir: string): Promise<{ uid: number; gid: number }> {
  const top = await fsp.lstat(siteDir);
  if (top.uid !== 0) return { uid: top.uid, gid: top.gid };
  const docroot = path.join(siteDir, 'public_html');
  const pub = await lstatOrNull(docroot);
  if (pub?.isDirectory() && pub.uid !== 0) return { uid: pub.uid, gid: pub.gid };
  throw precondition(
    `${siteDir} ${pub?.isDirectory() ? `and ${docroot} are` : 'is'} owned by root; FTP users never act as ` +
      `root. chown the site tree to the site's user first.`,
  );
}

/** Every directory from / down to `dir` must let uid/gid through (x bit), or proftpd cannot chroot there. */
async function assertTraversable(dir: string, uid: number, gid: number): Promise<void> {
  const chain: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    chain.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of chain) {
    const st = await fsp.stat(d);
    const bit = st.uid === uid ? 0o100 : st.gid === gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0)
      throw precondition(
        `The FTP user (uid ${uid}) cannot enter ${d} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}); ` +
          `make it traversable or pick another home.`,
      );
  }
}

/** Creates the missing directories of a resolved home (0755, owned by the home's uid/gid). Returns those made. */
export async function createHome(home: ResolvedHome): Promise<string[]> {
  const made: string[] = [];
  try {
    for (const d of home.missing) {
      await fsp.mkdir(d, { mode: 0o755 }); // no `recursive`: fails if something appeared meanwhile
      made.push(d);
      killPoint();
      // chown through a descriptor opened without following symlinks: if the new directory were
      // swapped for a link meanwhile (the parent belongs to the site user), a path-based chown
      // would hand the link's target to that user.
      const fh = await fsp.open(d, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        await fh.chown(home.uid, home.gid);
      } finally {
        await fh.close();
      }
    }
  } catch (e) {
    await removeDirs(made);
    if (resourceCode(e) !== null) throw e; // a full or read-only disk: the router names it (unavailable)
    throw precondition(
      `Could not create the home directory: ${(e as NodeJS.ErrnoException).code ?? String(e)}.`,
    );
  }
  return made;
}

/** Removes directories made by `createHome` (innermost first; only if still empty). */
export async function removeDirs(made: readonly string[]): Promise<void> {
  for (const d of [...made].reverse()) await fsp.rmdir(d).catch(() => undefined);
}
