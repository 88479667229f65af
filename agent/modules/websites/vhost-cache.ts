import { promises as fsp, type Stats } from 'node:fs';

/**
 * Reads vhost files, parsing each only when it changed. `list websites` reads every vhost on each
 * call; reading a file costs four thread-pool round trips (open, fstat, read, close) while a
 * stat costs one, so the files are stat'ed (all at once) and a file whose inode, size, mtime and
 * ctime are unchanged is answered from memory. PonIO's own writes replace files by rename (a new
 * inode), an admin's edit changes mtime/ctime: both are seen on the next call. Bounded: entries of
 * files that are gone are dropped on every read.
 */
export class VhostCache<T> {
  private readonly entries = new Map<string, { key: string; value: T }>();

  constructor(private readonly parse: (text: string, file: string) => T) {}

  /** The parsed contents of each file (null when it does not exist or cannot be read), in order. */
  async read(files: readonly string[]): Promise<(T | null)[]> {
    const stats = await Promise.all(files.map((f) => fsp.stat(f).catch(() => null)));
    const out = await Promise.all(
      files.map(async (file, i) => {
        const st = stats[i];
        if (!st?.isFile()) {
          this.entries.delete(file);
          return null;
        }
        const key = keyOf(st);
        const hit = this.entries.get(file);
        if (hit?.key === key) return hit.value;
        let text: string;
        try {
          text = await fsp.readFile(file, 'utf8');
        } catch {
          this.entries.delete(file);
          return null;
        }
        const value = this.parse(text, file);
        this.entries.set(file, { key, value });
        return value;
      }),
    );
    const wanted = new Set(files);
    for (const f of this.entries.keys()) if (!wanted.has(f)) this.entries.delete(f);
    return out;
  }
}

const keyOf = (st: Stats): string => `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
