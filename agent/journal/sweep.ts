import { promises as fsp } from 'node:fs';
import path from 'node:path';

/**
 * The temp files PonIO's atomic writes leave when killed between writing and renaming:
 * `.<name>.<12 hex>.tmp` (agent/os/files.ts atomicWrite and atomicSymlink). Nothing else matches.
 */
export const TEMP_FILE = /^\..+\.[0-9a-f]{12}\.tmp$/;

/**
 * Removes stale temp files from the directories the agent writes in (at start, while this agent
 * holds the state-directory lock, so no write of its own is in progress). A temp file may hold
 * a copy of secrets (the FTP user file's password hashes), so none is left. Missing directories
 * are skipped. Returns the paths removed.
 */
export async function sweepTempFiles(dirs: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of new Set(dirs)) {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!TEMP_FILE.test(name)) continue;
      const file = path.join(dir, name);
      const st = await fsp.lstat(file).catch(() => null);
      if (!st || st.isDirectory()) continue;
      await fsp.rm(file, { force: true });
      removed.push(file);
    }
  }
  return removed;
}
