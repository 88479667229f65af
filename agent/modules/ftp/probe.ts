import { whichBinary } from '../../os/exec.ts';
import { unavailable, type ModuleAvailability } from '../types.ts';

/**
 * proftpd (or openssl, for password hashes) is missing: the first check of both proftpd
 * adapters, kept apart so agent/main.ts can ask it without loading the module.
 */
export function proftpdMissing(): ModuleAvailability | null {
  if (!whichBinary('proftpd'))
    return unavailable('proftpd is not installed on this host (apt-get install proftpd-core).');
  if (!whichBinary('openssl'))
    return unavailable('openssl is not installed on this host (apt-get install openssl).');
  return null;
}

/**
 * Why the ftp module is unavailable when that is clear without loading it, else null. The
 * module checks its settings (`modules.ftp`) first: when there are some, it decides.
 */
export function probeFtp(settings: unknown): ModuleAvailability | null {
  return settings === undefined ? proftpdMissing() : null;
}
