import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';

// The agent's state-directory lock as a file format both sides read: the agent takes it
// (agent/journal/state-lock.ts), `npm start` finds an agent a killed dev panel left behind
// (server/dev-sandbox.ts).

/** The lock file in an agent's state directory: `<pid> <start time>` of the agent holding it. */
export const LOCK_NAME = 'agent.lock';

export interface LockHolder {
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  started: string;
}

/** The start time of a running process, or null when there is no such process. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** The live agent holding a state directory's lock, or null (no lock, or its holder is gone). */
export async function lockHolder(stateDir: string): Promise<LockHolder | null> {
  const text = await fsp.readFile(path.join(stateDir, LOCK_NAME), 'utf8').catch(() => null);
  if (text === null) return null;
  const m = /^([0-9]+) ([0-9]+)\n?$/.exec(text);
  if (!m?.[1] || !m[2]) return null;
  const pid = Number(m[1]);
  return processStart(pid) === m[2] ? { pid, started: m[2] } : null;
}
