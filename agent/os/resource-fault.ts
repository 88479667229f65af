import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RpcError } from '../../shared/protocol/errors.ts';

/**
 * Resource faults (a full disk, an exceeded quota, a read-only file system) are the host's state,
 * not a bug: the router turns them into `unavailable` naming the path and the condition instead
 * of `internal` ("see the agent log"). Every module's write path gets this through the router's
 * error mapping; atomicWrite names the file it was writing when the error itself does not.
 */

const CONDITIONS = {
  ENOSPC: 'no space is left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EROFS: 'the file system is read-only',
} as const;
export type ResourceCode = keyof typeof CONDITIONS;

const isResourceCode = (c: unknown): c is ResourceCode => typeof c === 'string' && c in CONDITIONS;

/** The errno code of a resource fault carried by `err` (or its `cause`), else null. */
export function resourceCode(err: unknown): ResourceCode | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (isResourceCode(code)) return code;
  }
  return null;
}

/** The path an fs error names (its `path`, or the `path` added by withPath), if any. */
function pathOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const p = (e as NodeJS.ErrnoException).path;
    if (typeof p === 'string' && p !== '') return p;
  }
  return undefined;
}

/**
 * `unavailable` naming the path and the condition when `err` is ENOSPC/EDQUOT/EROFS, else null.
 * The change was rolled back by the handler (every mutation restores on failure), so the message
 * says what the admin can do.
 */
export function resourceFault(err: unknown): RpcError | null {
  const code = resourceCode(err);
  if (code === null) return null;
  const where = pathOf(err);
  const at = where === undefined ? '' : ` writing ${where}`;
  return new RpcError(
    'unavailable',
    `The change could not be made: ${CONDITIONS[code]}${at} (${code}). Nothing was changed; free space or make the file system writable, then retry.`,
    { condition: code, ...(where !== undefined ? { path: where } : {}) },
  );
}

/**
 * `err` with `path` set to `file` when it is a resource fault that does not name a path (or
 * always, with `replace`: e.g. instead of a temp file's name).
 */
export function withPath(err: unknown, file: string, replace = false): unknown {
  if (resourceCode(err) === null || (!replace && pathOf(err) !== undefined) || !(err instanceof Error))
    return err;
  (err as NodeJS.ErrnoException).path = file;
  return err;
}

/**
 * Why a service could not write under `dirs` (its pid file, logs, runtime files): the file
 * systems among them that are full (no block or no inode left for non-root) or read-only, as one
 * sentence, or '' when none is. A daemon that dies on a full disk often cannot log why (its log
 * is on the same full disk), so a failed reload is explained with this.
 */
export async function resourceShortage(dirs: readonly string[]): Promise<string> {
  const found: string[] = [];
  for (const dir of new Set(dirs.map((d) => path.resolve(d)))) {
    try {
      const st = await fsp.statfs(dir);
      if (st.bavail === 0) found.push(`${dir}: no space left on device (ENOSPC)`);
      else if (st.files > 0 && st.ffree === 0) found.push(`${dir}: no inodes left on device (ENOSPC)`);
      else await fsp.access(dir, fsp.constants.W_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (isResourceCode(code)) found.push(`${dir}: ${CONDITIONS[code]} (${code})`);
    }
  }
  return found.length === 0 ? '' : `The host is out of a resource: ${found.join('; ')}.`;
}
