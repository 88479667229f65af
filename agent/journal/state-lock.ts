import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { tempNameFor } from '../os/files.ts';
import { LOCK_NAME, lockHolder, processStart, type LockHolder } from '../../shared/agent-lock.ts';

export { LOCK_NAME, lockHolder } from '../../shared/agent-lock.ts';

export class StateDirLocked extends Error {
  constructor(
    readonly stateDir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `Another PonIO agent (pid ${holder.pid}) is using the state directory ${stateDir}; ` +
        `only one agent may serve it. Stop that agent first.`,
    );
    this.name = 'StateDirLocked';
  }
}

/**
 * One agent per state directory: takes `<stateDir>/agent.lock` (made with link(2), which fails
 * when the file exists, so two agents starting together cannot both win), replacing a lock whose
 * holder is no longer running (an agent killed with -9). Throws StateDirLocked when a live agent
 * holds it. Returns the release function (removes the lock if it is still this process's).
 */
export async function lockStateDir(stateDir: string): Promise<() => Promise<void>> {
  const file = path.join(stateDir, LOCK_NAME);
  const started = processStart(process.pid);
  if (started === null) throw new Error('cannot read /proc/self/stat');
  const mine = `${process.pid} ${started}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    const tmp = tempNameFor(file);
    await fsp.writeFile(tmp, mine, { mode: 0o600 });
    try {
      await fsp.link(tmp, file);
      await fsp.rm(tmp, { force: true });
      // A concurrent starter that found a stale lock may have replaced ours: re-read to be sure.
      if ((await fsp.readFile(file, 'utf8')) !== mine) continue;
      return async () => {
        if ((await fsp.readFile(file, 'utf8').catch(() => null)) === mine)
          await fsp.rm(file, { force: true });
      };
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await lockHolder(stateDir);
    if (holder) throw new StateDirLocked(stateDir, holder);
    await fsp.rm(file, { force: true }); // stale: its agent is gone
  }
  const holder = await lockHolder(stateDir);
  if (holder) throw new StateDirLocked(stateDir, holder);
  throw new Error(`could not take the lock ${file}`);
}
