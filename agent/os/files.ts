import { promises as fsp, constants } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { withPath } from './resource-fault.ts';
import { killPoint } from '../journal/kill-point.ts';

export class PathGuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathGuardError';
  }
}

const isInside = (root: string, candidate: string): boolean =>
  candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

/**
 * Joins untrusted segments under `root` and guarantees the result stays inside it: no NUL, no
 * `..` escape, prefix checked with a trailing separator (so `/var/www/a.com.evil` is not inside
 * `/var/www/a.com`). Pure string check; see `resolveRealUnder` for symlinks.
 */
export function resolveUnder(root: string, ...segments: string[]): string {
  const base = path.resolve(root);
  for (const s of segments) {
    if (typeof s !== 'string' || s.includes('\0')) throw new PathGuardError('path contains a NUL byte');
  }
  const full = path.resolve(base, ...segments);
  if (!isInside(base, full)) throw new PathGuardError(`path escapes ${base}`);
  return full;
}

/**
 * Like resolveUnder, and also follows symlinks of the existing part of the path: the real
 * location must still be inside the real root (no symlink escape).
 */
export async function resolveRealUnder(root: string, ...segments: string[]): Promise<string> {
  const full = resolveUnder(root, ...segments);
  const realRoot = await fsp.realpath(path.resolve(root));
  let existing = full;
  const rest: string[] = [];
  for (;;) {
    try {
      const real = await fsp.realpath(existing);
      const candidate = path.join(real, ...rest.reverse());
      if (!isInside(realRoot, candidate))
        throw new PathGuardError(`path escapes ${realRoot} through a symlink`);
      return candidate;
    } catch (e) {
      if (e instanceof PathGuardError) throw e;
      const parent = path.dirname(existing);
      if (parent === existing) throw new PathGuardError('path does not exist');
      rest.push(path.basename(existing));
      existing = parent;
    }
  }
}

export interface WriteOptions {
  mode?: number;
  uid?: number;
  gid?: number;
}

/** The temp name of an atomic write next to `file` (agent/journal/sweep.ts removes stale ones). */
export const tempNameFor = (file: string): string =>
  path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);

/**
 * Atomic replace: write a temp file in the same directory, fsync it, rename over the target,
 * fsync the directory. A crash leaves either the old or the new content, never a torn file.
 */
export async function atomicWrite(
  file: string,
  data: string | Uint8Array,
  opts: WriteOptions = {},
): Promise<void> {
  const dir = path.dirname(file);
  const tmp = tempNameFor(file);
  const fh = await fsp
    .open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, opts.mode ?? 0o644)
    .catch((e: unknown) => {
      throw withPath(e, file, true);
    });
  try {
    await fh.writeFile(data);
    if (opts.mode !== undefined) await fh.chmod(opts.mode);
    if (opts.uid !== undefined && opts.gid !== undefined) await fh.chown(opts.uid, opts.gid);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw withPath(e, file); // a write error names no file: a full disk is reported with it
  }
  await fh.close();
  killPoint(); // crash tests: the temp file is written, the target not yet replaced
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw withPath(e, file);
  }
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const d = await fsp.open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Reads a file, or null when it does not exist. */
export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** A snapshot of files (content or absence) that can be restored atomically. */
export class FileSnapshot {
  private readonly saved = new Map<string, Buffer | null>();

  async add(file: string): Promise<void> {
    if (this.saved.has(file)) return;
    try {
      this.saved.set(file, await fsp.readFile(file));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.saved.set(file, null);
    }
  }

  /** Puts every file back as it was (deleting those that did not exist). */
  async restore(): Promise<void> {
    for (const [file, content] of this.saved) {
      if (content === null) await fsp.rm(file, { force: true });
      else await atomicWrite(file, content);
    }
  }
}
