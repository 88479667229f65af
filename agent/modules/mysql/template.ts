import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';

/**
 * A cache of one freshly initialised MariaDB datadir, so that a new sandbox costs a copy (~0.1 s)
 * instead of mariadb-install-db (~4 s). It lives in the user's own cache directory
 * (`$XDG_CACHE_HOME/ponio` or `~/.cache/ponio`, never a shared /tmp path another user could
 * plant), keyed by the uid and the mariadbd binary (size + mtime: an upgrade makes a new one).
 * A template that is not owned by this user or is writable by others is ignored. Any failure
 * here only means the slow path: callers fall back to mariadb-install-db.
 */
export class DatadirTemplate {
  constructor(
    private readonly mariadbd: string,
    private readonly logger: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private async dir(): Promise<string> {
    const st = await fsp.stat(this.mariadbd);
    const uid = process.getuid?.() ?? 0;
    const base = this.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
    return path.join(base, 'ponio', `mariadb-datadir-${uid}-${st.size}-${Math.floor(st.mtimeMs)}`);
  }

  /** Copies the template into `datadir` (which must not exist); false when there is none. */
  async copyTo(datadir: string): Promise<boolean> {
    try {
      const dir = await this.dir();
      const st = await fsp.lstat(dir).catch(() => null);
      if (!st) return false;
      if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? st.uid) || (st.mode & 0o022) !== 0) {
        this.logger.warn({ dir }, 'ignoring a MariaDB datadir template not owned by this user');
        return false;
      }
      if ((await fsp.stat(path.join(dir, 'mysql_upgrade_info')).catch(() => null)) === null) return false;
      await fsp.cp(dir, datadir, { recursive: true, errorOnExist: true, force: false });
      return true;
    } catch (e) {
      this.logger.debug({ err: (e as Error).message }, 'no MariaDB datadir template');
      await fsp.rm(datadir, { recursive: true, force: true }).catch(() => undefined);
      return false;
    }
  }

  /** Saves a freshly initialised (not yet started) datadir as the template; best effort. */
  async saveFrom(datadir: string): Promise<void> {
    let tmp: string | null = null;
    try {
      const dir = await this.dir();
      await fsp.mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
      tmp = `${dir}.${randomBytes(6).toString('hex')}.tmp`;
      await fsp.cp(datadir, tmp, { recursive: true });
      await fsp.chmod(tmp, 0o700);
      // Atomic: a concurrent agent that saved first wins, and this copy is dropped.
      await fsp.rename(tmp, dir);
      tmp = null;
    } catch (e) {
      this.logger.debug({ err: (e as Error).message }, 'could not save the MariaDB datadir template');
    } finally {
      if (tmp) await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
