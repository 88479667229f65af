import { whichBinary } from '../../os/exec.ts';
import type { HostMode } from '../../os/layout.ts';
import { unavailable, type ModuleAvailability } from '../types.ts';

export const MARIADB_MISSING = 'MariaDB is not installed on this host (apt-get install mariadb-server).';

/**
 * The MariaDB server program is missing: system mode talks to the host's server (mariadbd or
 * mysqld), sandbox mode starts its own mariadbd. The first check of server.ts, kept apart so
 * agent/main.ts can ask it without loading the module.
 */
export const mariadbMissing = (mode: HostMode): boolean =>
  mode === 'sandbox'
    ? whichBinary('mariadbd') === null
    : whichBinary('mariadbd') === null && whichBinary('mysqld') === null;

/**
 * Why the mysql module is unavailable when that is clear without loading it, else null. With
 * settings (`modules.mysql`: their own errors first; a socket path means a server elsewhere), the
 * module decides.
 */
export function probeMysql(mode: HostMode, settings: unknown): ModuleAvailability | null {
  return settings === undefined && mariadbMissing(mode) ? unavailable(MARIADB_MISSING) : null;
}
