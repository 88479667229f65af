import { describeInput, hasControlChars, invalid, valid, type Validated } from './result.ts';

/** Retention and schedule bounds (docs/backups.md). */
export const BACKUP_LIMITS = {
  keep: { min: 0, max: 1000 },
  trashDays: { min: 1, max: 365 },
  everyHours: { min: 1, max: 168 },
  checkEveryDays: { min: 1, max: 90 },
} as const;

/**
 * Validates a restic snapshot id: its short (8) or full (64) hex form, lower-cased. Anything
 * else (a name like `latest`, a path, an option such as `--help`) is refused, so an id never
 * reaches restic as anything but an id.
 */
export function validateSnapshotId(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('A snapshot id must be a string.');
  if (input.length === 0) return invalid('The snapshot id is empty.');
  if (input.length > 64 || hasControlChars(input) || !/^[0-9a-fA-F]{8,64}$/.test(input))
    return invalid(
      `The snapshot id ${describeInput(input)} is not valid: it is 8 to 64 hexadecimal digits (as the Backups tab lists it).`,
    );
  return valid(input.toLowerCase());
}
