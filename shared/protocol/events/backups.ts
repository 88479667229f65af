import { z } from 'zod';
import { defineEvent, request } from '../define.ts';
import { registerEvents } from '../catalog.ts';
import { BACKUP_LIMITS, validateSnapshotId } from '../../validate/backups.ts';
import { fromValidator } from '../../validate/zod.ts';
import { validateDomain } from '../../validate/domain.ts';
import { DB_NAME_MAX, validateDatabaseName } from '../../validate/mysql.ts';

// Built here (not imported from events/websites.ts or mysql.ts, which would register those
// domains' schemas in an agent that did not load them).
const domainSchema = fromValidator(z.string().max(300), validateDomain);
const dbNameSchema = fromValidator(z.string().max(DB_NAME_MAX * 4), validateDatabaseName);

export const snapshotIdSchema = fromValidator(z.string().max(200), validateSnapshotId);

const count = (what: string, b: { min: number; max: number }) =>
  z
    .number()
    .int(`${what} must be a whole number`)
    .min(b.min, `${what} is at least ${b.min}`)
    .max(b.max, `${what} is at most ${b.max}`);

/** The schedule and retention of a host's backups (stored by the agent; docs/backups.md). */
export const backupSettingsSchema = z.strictObject({
  /** Scheduled backups of every site and database on; off keeps only on-demand ones. */
  scheduleEnabled: z.boolean(),
  /** Hours between scheduled backups (24 = daily, the default). */
  everyHours: count('everyHours', BACKUP_LIMITS.everyHours),
  keepDaily: count('keepDaily', BACKUP_LIMITS.keep),
  keepWeekly: count('keepWeekly', BACKUP_LIMITS.keep),
  keepMonthly: count('keepMonthly', BACKUP_LIMITS.keep),
  /** Days a trash snapshot (taken before a delete) is kept. */
  trashDays: count('trashDays', BACKUP_LIMITS.trashDays),
  /** Days between integrity checks (`restic check`). */
  checkEveryDays: count('checkEveryDays', BACKUP_LIMITS.checkEveryDays),
});
export type BackupSettings = z.infer<typeof backupSettingsSchema>;

export const BACKUP_KINDS = ['site', 'database'] as const;
/** Why a snapshot was taken. */
export const BACKUP_REASONS = ['manual', 'scheduled', 'trash', 'pre-restore'] as const;

export const snapshotSchema = z.strictObject({
  id: z.string(),
  shortId: z.string(),
  /** ISO time the snapshot was taken. */
  time: z.string(),
  kind: z.enum(BACKUP_KINDS),
  /** The site's domain or the database's name. */
  name: z.string(),
  reason: z.enum(BACKUP_REASONS),
  /** Bytes the snapshot restores (null when this agent did not record it). */
  sizeBytes: z.number().nullable(),
  /** New bytes the snapshot added to the repository (deduplicated). */
  addedBytes: z.number().nullable(),
  /** A trash snapshot: when the schedule purges it. */
  expiresAt: z.string().nullable(),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

export const runResultSchema = z.strictObject({
  at: z.string(),
  ok: z.boolean(),
  message: z.string(),
  /** What started it. */
  trigger: z.enum(['manual', 'scheduled']),
});
export type RunResult = z.infer<typeof runResultSchema>;

const backedUpSchema = z.strictObject({ kind: z.enum(BACKUP_KINDS), name: z.string(), snapshot: z.string() });

export const backupsEvents = {
  'list backups': defineEvent({
    module: 'backups',
    mutation: false,
    timeoutMs: 60_000,
    summary:
      'Lists the snapshots of the host’s restic repository (per site and database, with sizes), the schedule, retention and the last runs.',
    request: request({
      kind: z.enum(BACKUP_KINDS).optional(),
      name: z.string().max(300).optional(),
    }),
    reply: z.strictObject({
      /** Where the repository is (a local path, or sftp:/s3: without credentials). */
      repository: z.string(),
      initialized: z.boolean(),
      settings: backupSettingsSchema,
      lastBackup: runResultSchema.nullable(),
      lastPrune: runResultSchema.nullable(),
      lastCheck: runResultSchema.nullable(),
      /** When the next scheduled backup is due (null when the schedule is off). */
      nextBackupAt: z.string().nullable(),
      snapshots: z.array(snapshotSchema),
    }),
  }),
  'back up': defineEvent({
    module: 'backups',
    mutation: true,
    timeoutMs: 3_600_000,
    summary:
      'Backs up sites (files, vhost, FTP users) and databases (a consistent dump) into the host’s restic repository; everything when none is named.',
    request: request({
      sites: z.array(domainSchema).max(500).optional(),
      databases: z.array(dbNameSchema).max(500).optional(),
    }),
    reply: z.strictObject({ snapshots: z.array(backedUpSchema) }),
  }),
  'restore backup': defineEvent({
    module: 'backups',
    mutation: true,
    timeoutMs: 3_600_000,
    summary:
      'Restores a site or database snapshot, to its own name (the current state is backed up first) or to a new name; rolled back on any failure.',
    request: request({
      snapshot: snapshotIdSchema,
      /** A new domain (site) or database name; the snapshot's own name when absent. */
      as: z.string().max(300).optional(),
    }),
    reply: z.strictObject({
      kind: z.enum(BACKUP_KINDS),
      name: z.string(),
      snapshot: z.string(),
      /** The snapshot of what the restore replaced (same-name restores of something that existed). */
      before: z.string().nullable(),
    }),
  }),
  'set backup settings': defineEvent({
    module: 'backups',
    mutation: true,
    timeoutMs: 15_000,
    summary: 'Sets the backup schedule, the retention (keep daily/weekly/monthly) and the trash period.',
    request: request(backupSettingsSchema.partial().shape),
    reply: backupSettingsSchema,
  }),
  'prune backups': defineEvent({
    module: 'backups',
    mutation: true,
    timeoutMs: 3_600_000,
    summary:
      'Applies the retention (restic forget --prune) and purges trash snapshots older than the trash period.',
    request: request({}),
    reply: z.strictObject({ removed: z.number().int(), message: z.string() }),
  }),
  'check backups': defineEvent({
    module: 'backups',
    mutation: true,
    timeoutMs: 3_600_000,
    summary: 'Checks the repository’s integrity (restic check) and records the result.',
    request: request({}),
    reply: runResultSchema,
  }),
} as const;

// The agent's router validates with what is registered: only the domains a process loaded.
registerEvents(backupsEvents);
