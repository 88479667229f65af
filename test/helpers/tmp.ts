import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dirs: string[] = [];
let hooked = false;

/**
 * A fresh dir under the system temp dir, removed when this test file's process exits (every test
 * file runs in a process of its own). The removal runs after all of the file's `after()` hooks,
 * i.e. after the agents, Apache/proftpd/MariaDB instances and panels the file stops there, so a
 * sandbox is never pulled from under a running service. A test may still remove it earlier.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (!hooked) process.once('exit', removeTempDirs);
  hooked = true;
  dirs.push(dir);
  return dir;
}

function removeTempDirs(): void {
  for (const d of dirs.splice(0)) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch (err) {
      process.stderr.write(`could not remove ${d}: ${String(err)}\n`);
    }
  }
}
