import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DatabaseBackupSource } from '../types.ts';
import type { MysqlAdmin } from './admin.ts';
import type { MysqlServer } from './server.ts';
import { readAdminPassword, type MysqlSettings } from './settings.ts';

/**
 * What the backups module needs of MariaDB (agent/modules/backups): the databases, statements as
 * the admin account, and how mariadb-dump / mariadb reach the server as that account. A password
 * (system mode with modules.mysql.passwordFile) goes into a 0600 defaults file for the one run,
 * never onto a command line.
 */
export function databaseBackupSource(
  server: () => MysqlServer,
  admin: MysqlAdmin,
  settings: MysqlSettings,
  runDir: string,
): DatabaseBackupSource {
  return {
    databases: async () => (await admin.listDatabases()).map((d) => d.name),
    async query(sql, params = []) {
      const [rows] = await (await server().pool()).query(sql, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    async clientArgs() {
      const srv = server();
      const base = [`--socket=${srv.socketPath}`, `--user=${srv.adminUser}`];
      const password = readAdminPassword(settings);
      if (password === undefined) return { args: base, done: () => Promise.resolve() };
      await fsp.mkdir(runDir, { recursive: true, mode: 0o700 });
      const file = path.join(runDir, `.ponio-client-${randomBytes(6).toString('hex')}.cnf`);
      // The value is quoted as the client's option files read it (backslash and quote escaped).
      const quoted = `"${password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
      await fsp.writeFile(file, `[client]\npassword=${quoted}\n`, { mode: 0o600, flag: 'wx' });
      return {
        args: [`--defaults-extra-file=${file}`, ...base],
        done: () => fsp.rm(file, { force: true }),
      };
    },
  };
}
