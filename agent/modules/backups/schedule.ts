import { nextBackupAt } from './service.ts';
import type { BackupState } from './state.ts';

/** What the schedule has to do now (pure: unit-tested). */
export function dueWork(st: BackupState, now: number): { backup: boolean; check: boolean } {
  const next = nextBackupAt(st);
  const lastCheck = Date.parse(st.lastCheck?.at ?? st.anchor);
  return {
    backup: next !== null && Date.parse(next) <= now,
    check: lastCheck + st.settings.checkEveryDays * 86_400_000 <= now,
  };
}

/** How often the agent looks whether scheduled work is due. */
export const SCHEDULE_TICK_MS = 60_000;
