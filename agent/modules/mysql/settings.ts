import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { RpcError } from '../../../shared/protocol/errors.ts';

/**
 * The mysql module's settings: `modules.mysql` in the agent config (all optional).
 *
 * ```json
 * { "modules": { "mysql": { "socket": "/run/mysqld/mysqld.sock", "user": "root" } } }
 * ```
 * - `socket`: the server's local socket (system mode; default /run/mysqld/mysqld.sock).
 * - `user`: the admin account the agent logs in as (default `root`, authenticated by unix_socket
 *   because the agent runs as root). This account is never listed, changed or dropped.
 * - `passwordFile`: a file (mode 0600) holding that account's password, when it is not unix_socket.
 * - `port`: sandbox mode only: the loopback port of the private MariaDB (default: a free one).
 */
export const mysqlSettingsSchema = z.strictObject({
  socket: z
    .string()
    .min(2)
    .max(100)
    .refine((s) => path.isAbsolute(s) && !s.includes('\0'), 'must be an absolute path')
    .optional(),
  user: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/, 'must be a MariaDB account name')
    .optional(),
  passwordFile: z
    .string()
    .min(2)
    .refine((s) => path.isAbsolute(s), 'must be an absolute path')
    .optional(),
  port: z.number().int().min(1).max(65535).optional(),
});
export type MysqlSettings = z.infer<typeof mysqlSettingsSchema>;

export const DEFAULT_SOCKET = '/run/mysqld/mysqld.sock';

/** Parses `modules.mysql`; throws an Error with one clear sentence. */
export function parseMysqlSettings(raw: unknown): MysqlSettings {
  const r = mysqlSettingsSchema.safeParse(raw ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    const where = i && i.path.length > 0 ? `modules.mysql.${i.path.join('.')}: ` : 'modules.mysql: ';
    const what =
      i?.code === 'unrecognized_keys' ? `unknown setting(s) ${i.keys.join(', ')}` : (i?.message ?? '');
    throw new Error(`invalid mysql settings: ${where}${what}`);
  }
  return r.data;
}

/** Reads the admin password file (first line), or undefined when none is configured. */
export function readAdminPassword(settings: MysqlSettings): string | undefined {
  if (settings.passwordFile === undefined) return undefined;
  let code: string;
  try {
    return readFileSync(settings.passwordFile, 'utf8').split('\n')[0] ?? '';
  } catch (e) {
    code = (e as NodeJS.ErrnoException).code ?? 'error';
  }
  throw new RpcError(
    'unavailable',
    `cannot read modules.mysql.passwordFile ${settings.passwordFile}: ${code}`,
  );
}
