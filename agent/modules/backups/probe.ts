import { whichBinary } from '../../os/exec.ts';
import type { ModuleAvailability } from '../types.ts';

export const RESTIC_MISSING =
  'restic is not installed on this host (apt-get install restic); backups need it.';

/** Cheap: whether restic is there (no module code loaded otherwise). */
export function probeBackups(): ModuleAvailability | null {
  return whichBinary('restic') === null ? { available: false, reason: RESTIC_MISSING } : null;
}
