import { whichBinary } from '../../os/exec.ts';
import type { HostMode } from '../../os/layout.ts';
import { unavailable, type ModuleAvailability } from '../types.ts';

/**
 * Apache's programs are missing: the websites module's first availability check, kept apart so
 * agent/main.ts can ask it without loading the module (a missing service costs nothing).
 * System mode also needs apache2ctl (reloads); the sandbox runs apache2 itself.
 */
export function apacheMissing(mode: HostMode): ModuleAvailability | null {
  const present =
    whichBinary('apache2') !== null && (mode === 'sandbox' || whichBinary('apache2ctl') !== null);
  return present ? null : unavailable('Apache is not installed on this host (apt-get install apache2).');
}
