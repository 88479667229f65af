import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dirs: string[] = [];
let hooked = false;

/**
 * A fresh dir under the system temp dir, removed when this test file's process exits (every test
 * file runs in a process of its own). The removal runs after all of the file's `after()` hooks,
 * i.e. after the agents, Apache/proftpd/MariaDB instances and panels the file stops there, so a
 * sandbox is never pulled from under a running service; whatever still runs from it then (a
 * service a killed agent left) is killed first. A test may still remove it earlier.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (!hooked) process.once('exit', removeTempDirs);
  hooked = true;
  dirs.push(dir);
  return dir;
}

/**
 * SIGKILLs every process whose command line names `dir` (a sandbox's Apache, proftpd or MariaDB
 * that a killed agent left serving: they outlive the agent by design and would otherwise keep
 * running on a deleted directory). Synchronous: it runs in the process's exit hook.
 */
function killProcessesUnder(dir: string): void {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(`${dir}/`))
        process.kill(Number(name), 'SIGKILL');
    } catch {
      /* gone, or not ours to signal */
    }
  }
}

function removeTempDirs(): void {
  for (const d of dirs.splice(0)) {
    killProcessesUnder(d);
    try {
      rmSync(d, { recursive: true, force: true });
    } catch (err) {
      process.stderr.write(`could not remove ${d}: ${String(err)}\n`);
    }
  }
}
