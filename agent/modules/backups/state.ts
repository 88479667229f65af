import path from 'node:path';
import { z } from 'zod';
import {
  BACKUP_REASONS,
  backupSettingsSchema,
  runResultSchema,
  type BackupSettings,
  type RunResult,
} from '../../../shared/protocol/events/backups.ts';
import { atomicWrite, readIfExists } from '../../os/files.ts';

export const DEFAULT_SETTINGS: BackupSettings = {
  scheduleEnabled: true,
  everyHours: 24,
  keepDaily: 7,
  keepWeekly: 4,
  keepMonthly: 6,
  trashDays: 14,
  checkEveryDays: 7,
};

const stateSchema = z.strictObject({
  format: z.literal(1),
  settings: backupSettingsSchema,
  /** When the schedule started counting (the first start of the module). */
  anchor: z.string(),
  lastBackup: runResultSchema.nullable(),
  lastScheduled: z.string().nullable(),
  lastPrune: runResultSchema.nullable(),
  lastCheck: runResultSchema.nullable(),
  /** What restic does not keep about a snapshot: why it was taken, and its sizes. */
  snapshots: z.record(
    z.string(),
    z.strictObject({
      reason: z.enum(BACKUP_REASONS),
      sizeBytes: z.number(),
      addedBytes: z.number(),
    }),
  ),
});
export type BackupState = z.infer<typeof stateSchema>;

/** The module's own state, one JSON file (0600) written atomically. */
export class StateFile {
  readonly file: string;
  constructor(dir: string) {
    this.file = path.join(dir, 'state.json');
  }

  async read(): Promise<BackupState> {
    const text = await readIfExists(this.file);
    if (text !== null) {
      const r = stateSchema.safeParse(JSON.parse(text));
      if (r.success) return r.data;
    }
    return {
      format: 1,
      settings: DEFAULT_SETTINGS,
      anchor: new Date().toISOString(),
      lastBackup: null,
      lastScheduled: null,
      lastPrune: null,
      lastCheck: null,
      snapshots: {},
    };
  }

  async write(s: BackupState): Promise<void> {
    await atomicWrite(this.file, `${JSON.stringify(s)}\n`, { mode: 0o600 });
  }

  async update(fn: (s: BackupState) => void): Promise<BackupState> {
    const s = await this.read();
    fn(s);
    await this.write(s);
    return s;
  }
}

export const result = (ok: boolean, message: string, trigger: RunResult['trigger']): RunResult => ({
  at: new Date().toISOString(),
  ok,
  message: message.slice(0, 2000),
  trigger,
});
