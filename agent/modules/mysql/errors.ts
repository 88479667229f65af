import { RpcError } from '../../../shared/protocol/errors.ts';

/** What mysql2 puts on its errors (server errors and connection errors). */
interface DriverError {
  code?: string;
  errno?: number;
  sqlMessage?: string;
  message?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_TOO_MANY_USER_CONNECTIONS',
]);

/** Removes anything that looks like a password hash from a server message (never echo secrets). */
export const scrub = (s: string): string => s.replace(/\*[0-9A-Fa-f]{40}/g, '[hash]').slice(0, 500);

export const driverError = (e: unknown): DriverError | null =>
  e !== null && typeof e === 'object' && ('code' in e || 'errno' in e) ? (e as DriverError) : null;

/**
 * Turns a driver error into an RpcError for the admin: the server being down or unreachable is
 * `unavailable`; a refusal by the server is `failed-precondition` with the server's own words.
 * Other errors (bugs) are returned unchanged so the router reports them as `internal`.
 */
export function toRpcError(e: unknown, socketPath: string, adminUser: string): unknown {
  if (e instanceof RpcError) return e;
  const d = driverError(e);
  if (!d) return e;
  const code = d.code ?? '';
  if (CONNECTION_CODES.has(code))
    return new RpcError(
      'unavailable',
      `MariaDB is not reachable through ${socketPath} (${code}); is the server running?`,
    );
  if (code === 'ER_ACCESS_DENIED_ERROR' || code === 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR')
    return new RpcError(
      'unavailable',
      `MariaDB refused the agent's admin account ${adminUser}; check modules.mysql in the agent config.`,
    );
  if (code === 'ER_NOT_VALID_PASSWORD')
    return new RpcError(
      'failed-precondition',
      'The server refused the password: a password validation plugin is active and cannot check hashed passwords; disable strict_password_validation or the plugin.',
    );
  if (typeof d.errno === 'number' && d.sqlMessage !== undefined)
    return new RpcError('failed-precondition', `MariaDB refused the change: ${scrub(d.sqlMessage)}`);
  return e;
}
