import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { PhpSettings, PhpVersion } from '../../../shared/protocol/events/websites.ts';
import type { Exec } from '../../os/exec.ts';
import { resolveUnder } from '../../os/files.ts';
import type { PhpFpmHost } from './php-fpm.ts';
import { renderPool, siteUserName } from './php-pool.ts';
import { lookupUser, type Owner, type SitePaths } from './site-tree.ts';
import { chownSiteTree, ensureSiteUser, readPasswdEntry, removeSiteUser } from './site-user.ts';

/** The user Apache's workers run as: it owns the pool sockets and reads the sites' files. */
export const APACHE_USER = 'www-data';

/** A site's PHP as it will be written: pool file, socket, user. */
export interface PhpPlan {
  version: PhpVersion;
  settings: PhpSettings;
  user: string;
  socket: string;
  poolFile: string;
}

/**
 * PHP per site on top of the php-fpm host adapter: which versions may be asked for, the pool
 * of a site, its own user and the hand-over of its files. The websites service calls these in
 * its validate → write → check → reload → roll back sequence (service.ts, site-change.ts).
 */
export class SitePhp {
  constructor(
    readonly fpm: PhpFpmHost,
    private readonly exec: Exec,
  ) {}

  versions(): PhpVersion[] {
    return this.fpm.versions();
  }

  /** The plan for `php` (a version, or 'none' → null); refuses a version that is not installed. */
  plan(domain: string, php: string | undefined, settings: PhpSettings | undefined): PhpPlan | null {
    if (php === undefined || php === 'none') {
      if (settings !== undefined)
        throw new RpcError('invalid-argument', 'phpSettings need a PHP version (php is none).');
      return null;
    }
    const version = this.versions().find((v) => v === php);
    if (version === undefined) {
      const why = this.fpm.unavailable();
      throw new RpcError(
        'invalid-argument',
        why !== undefined
          ? `PHP ${php} cannot be used on this host: ${why}`
          : `PHP ${php} is not installed on this host (installed: ${this.versions().join(', ')}).`,
      );
    }
    const user = siteUserName(domain);
    return {
      version,
      settings: settings ?? {},
      user,
      socket: this.fpm.socketPath(version, `${user}.php${version}`),
      poolFile: resolveUnder(this.fpm.poolDir(version), `${user}.conf`),
    };
  }

  poolText(domain: string, plan: PhpPlan, paths: SitePaths, corrupt: boolean): string {
    return renderPool({
      domain,
      version: plan.version,
      user: plan.user,
      socketOwner: APACHE_USER,
      socket: plan.socket,
      siteDir: paths.siteDir,
      docroot: paths.docroot,
      tmpDir: tmpDirOf(paths),
      settings: plan.settings,
      corrupt,
    });
  }

  /** Whether the site's user exists already (recorded in the intent before it is made). */
  async userExists(user: string): Promise<boolean> {
    return (await readPasswdEntry(user)) !== null;
  }

  ensureUser(user: string, domain: string, paths: SitePaths): Promise<{ owner: Owner; created: boolean }> {
    return ensureSiteUser(this.exec, user, domain, paths.siteDir);
  }

  removeUser(user: string, domain: string): Promise<void> {
    return removeSiteUser(this.exec, user, domain);
  }

  /**
   * Hands the site tree to its own user: site directory 0750 and public_html 2750 with group
   * www-data (Apache reads through the group; other sites' users cannot enter), `tmp/` 0700 for
   * its PHP (sessions, uploads). Idempotent.
   */
  async giveTree(paths: SitePaths, owner: Owner): Promise<void> {
    const www = await lookupUser(APACHE_USER);
    if (!www) throw new Error(`the user ${APACHE_USER} does not exist on this host`);
    const tmp = tmpDirOf(paths);
    await fsp.mkdir(tmp, { mode: 0o700 }).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    });
    await chownSiteTree(paths.siteDir, owner, www.gid, new Set([paths.logDir]));
    await fsp.lchown(tmp, owner.uid, owner.gid);
    await fsp.chmod(tmp, 0o700);
    await fsp.chmod(paths.siteDir, 0o750);
    await fsp.chmod(paths.docroot, 0o2750);
  }

  /** Gives the tree back to www-data (0755), as every site without its own user has it. */
  async returnTree(paths: SitePaths): Promise<void> {
    const www = await lookupUser(APACHE_USER);
    if (!www) throw new Error(`the user ${APACHE_USER} does not exist on this host`);
    await fsp.rm(tmpDirOf(paths), { recursive: true, force: true });
    await chownSiteTree(paths.siteDir, www, www.gid, new Set([paths.logDir]));
    await fsp.chmod(paths.siteDir, 0o755);
    await fsp.chmod(paths.docroot, 0o755);
  }

  /** php-fpm's checker, then its graceful reload, for one version; throws for the admin. */
  async testAndReload(version: PhpVersion): Promise<void> {
    const t = await this.fpm.configTest(version);
    if (!t.ok)
      throw new RpcError('failed-precondition', `php-fpm config test failed: ${t.output || 'no output'}`, {
        checkerOutput: t.output,
      });
    const r = await this.fpm.reload(version);
    if (!r.ok)
      throw new RpcError('failed-precondition', `php-fpm did not reload: ${r.output}`, {
        checkerOutput: r.output,
      });
  }

  /** Reload without the checker (after a rollback put back what was accepted before). */
  async reloadQuietly(version: string): Promise<string> {
    const v = this.versions().find((x) => x === version);
    if (v === undefined) return '';
    const r = await this.fpm.reload(v).catch((e: unknown) => ({ ok: false, output: String(e) }));
    return r.ok ? '' : `php${v}-fpm did not reload: ${r.output}`;
  }
}

export const tmpDirOf = (paths: SitePaths): string => path.join(paths.siteDir, 'tmp');
