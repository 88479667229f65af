import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Logger } from 'pino';
import { killPoint } from '../../journal/kill-point.ts';
import type { Intent } from './recover.ts';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { Database, DatabaseUser } from '../../../shared/protocol/events/mysql.ts';
import { RESERVED_USERS, SYSTEM_SCHEMAS, type DbPrivilege } from '../../../shared/validate/mysql.ts';
import {
  grantTarget,
  identifiedBy,
  identifiedByHash,
  isNativeHash,
  nativePasswordHash,
  privilegeList,
  quoteAccount,
  quoteDb,
  storedGrantTarget,
  unescapeGrantDb,
} from './sql.ts';

/** mysql.db privilege columns and the privilege each one stands for. */
const DB_COLUMNS: readonly (readonly [string, string])[] = [
  ['Select_priv', 'SELECT'],
  ['Insert_priv', 'INSERT'],
  ['Update_priv', 'UPDATE'],
  ['Delete_priv', 'DELETE'],
  ['Create_priv', 'CREATE'],
  ['Drop_priv', 'DROP'],
  ['Index_priv', 'INDEX'],
  ['Alter_priv', 'ALTER'],
  ['References_priv', 'REFERENCES'],
  ['Create_tmp_table_priv', 'CREATE TEMPORARY TABLES'],
  ['Lock_tables_priv', 'LOCK TABLES'],
  ['Execute_priv', 'EXECUTE'],
  ['Create_view_priv', 'CREATE VIEW'],
  ['Show_view_priv', 'SHOW VIEW'],
  ['Create_routine_priv', 'CREATE ROUTINE'],
  ['Alter_routine_priv', 'ALTER ROUTINE'],
  ['Event_priv', 'EVENT'],
  ['Trigger_priv', 'TRIGGER'],
  ['Delete_history_priv', 'DELETE HISTORY'],
  ['Grant_priv', 'GRANT OPTION'],
];

export interface GrantRow {
  /** As stored in mysql.db (may be a pattern, `_` escaped as `\_`). */
  stored: string;
  database: string;
  privileges: string[];
}

const systemSchemaParams = [...SYSTEM_SCHEMAS];

/**
 * mysql.user is a view whose computed is_role has the server's collation (Debian's MariaDB:
 * utf8mb4_general_ci) while a literal has the connection's (utf8mb4_unicode_ci): `is_role = 'N'`
 * is then "Illegal mix of collations". Compared as bytes, it is the same test on every server.
 */
const NOT_A_ROLE = "CAST(is_role AS BINARY) = 'N'";

const DB_QUERY = `SELECT s.SCHEMA_NAME AS name, s.DEFAULT_CHARACTER_SET_NAME AS charset,
    s.DEFAULT_COLLATION_NAME AS collation,
    COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0) AS size, COUNT(t.TABLE_NAME) AS tables
  FROM information_schema.SCHEMATA s
  LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME
  WHERE s.SCHEMA_NAME NOT IN (?, ?, ?, ?)`;

/**
 * The database and account operations, on the admin pool. Every name reaching SQL text is
 * validated by the protocol schema AND quoted by sql.ts; every value is a `?` parameter; passwords
 * reach the server only as their hash. Mutations re-read the grant tables to verify what they did
 * and undo it when the result is not what was asked.
 */
export class MysqlAdmin {
  constructor(
    private readonly pool: () => Promise<Pool>,
    private readonly adminUser: string,
    private readonly logger: Logger,
  ) {}

  private async rows(sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
    const [rows] = await (await this.pool()).query<RowDataPacket[]>(sql, params);
    return rows;
  }

  private async run(sql: string): Promise<void> {
    await (await this.pool()).query(sql);
    killPoint();
  }

  /** Accounts PonIO never touches: the server's own and the agent's admin. */
  isProtectedUser(user: string): boolean {
    const u = user.toLowerCase();
    return (
      u === this.adminUser.toLowerCase() || (RESERVED_USERS as readonly string[]).includes(u) || u === ''
    );
  }

  private guardAccount(user: string): void {
    if (this.isProtectedUser(user))
      throw new RpcError(
        'invalid-argument',
        `"${user}" is the agent's admin account; PonIO does not touch it.`,
      );
  }

  // --- databases ---------------------------------------------------------------------------

  async listDatabases(): Promise<Database[]> {
    const rows = await this.rows(
      `${DB_QUERY} GROUP BY s.SCHEMA_NAME, s.DEFAULT_CHARACTER_SET_NAME, s.DEFAULT_COLLATION_NAME ORDER BY s.SCHEMA_NAME`,
      systemSchemaParams,
    );
    return rows.map(toDatabase);
  }

  async getDatabase(name: string): Promise<Database | null> {
    const rows = await this.rows(
      `${DB_QUERY} AND s.SCHEMA_NAME = ? GROUP BY s.SCHEMA_NAME, s.DEFAULT_CHARACTER_SET_NAME, s.DEFAULT_COLLATION_NAME`,
      [...systemSchemaParams, name],
    );
    return rows[0] ? toDatabase(rows[0]) : null;
  }

  async createDatabase(
    name: string,
    charset: string,
    collation: string,
    intent: Intent = noIntent,
  ): Promise<Database> {
    if (!/^[a-z0-9_]+$/.test(charset) || !/^[a-z0-9_]+$/.test(collation))
      throw new RpcError('invalid-argument', 'Unknown character set or collation.');
    if (await this.getDatabase(name))
      throw new RpcError('already-exists', `The database ${name} already exists.`);
    const supported = await this.rows(
      'SELECT 1 FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ? AND CHARACTER_SET_NAME = ?',
      [collation, charset],
    );
    if (supported.length === 0)
      throw new RpcError('failed-precondition', `This server does not support the collation ${collation}.`);
    await intent({ op: 'create database', name });
    await this.run(`CREATE DATABASE ${quoteDb(name)} CHARACTER SET ${charset} COLLATE ${collation}`);
    const created = await this.getDatabase(name);
    if (!created) throw new RpcError('internal', `The database ${name} was not found after creating it.`);
    return created;
  }

  async dropDatabase(name: string, intent: Intent = noIntent): Promise<void> {
    if (!(await this.getDatabase(name))) throw new RpcError('not-found', `There is no database ${name}.`);
    // Grants outlive a dropped database and would silently apply to a new one of the same name:
    // revoke the exact grants on it first (and put them back if the drop fails).
    const grants = await this.grantsOn(name);
    await intent({ op: 'drop database', name, grants });
    for (const g of grants) await this.revokeStored(g.user, g.host, g.row);
    try {
      await this.run(`DROP DATABASE ${quoteDb(name)}`);
    } catch (e) {
      await this.restoreGrants(grants);
      throw e;
    }
    if (await this.getDatabase(name))
      throw new RpcError('internal', `The database ${name} still exists after dropping it.`);
  }

  // --- accounts ----------------------------------------------------------------------------

  private async grantRows(user?: string, host?: string): Promise<Map<string, GrantRow[]>> {
    const cols = DB_COLUMNS.map(([c]) => c).join(', ');
    const where = user === undefined ? '' : ' WHERE User = ? AND Host = ?';
    const rows = await this.rows(
      `SELECT Db, User, Host, ${cols} FROM mysql.db${where} ORDER BY Db`,
      user === undefined ? [] : [user, host],
    );
    const out = new Map<string, GrantRow[]>();
    for (const r of rows) {
      const key = accountKey(String(r.User), String(r.Host));
      const stored = String(r.Db);
      const privileges = DB_COLUMNS.filter(([c]) => r[c] === 'Y').map(([, p]) => p);
      const list = out.get(key) ?? [];
      // An exact grant shows the database name; a pattern grant (made outside PonIO) shows the pattern.
      const database = hasUnescapedWildcard(stored) ? stored : unescapeGrantDb(stored);
      list.push({ stored, database, privileges });
      out.set(key, list);
    }
    return out;
  }

  async listUsers(): Promise<DatabaseUser[]> {
    const users = await this.rows(
      `SELECT User, Host FROM mysql.user WHERE ${NOT_A_ROLE} ORDER BY User, Host`,
    );
    const grants = await this.grantRows();
    return users
      .map((r) => ({ user: String(r.User), host: String(r.Host) }))
      .filter((a) => !this.isProtectedUser(a.user))
      .map((a) => ({
        ...a,
        grants: (grants.get(accountKey(a.user, a.host)) ?? []).map((g) => ({
          database: g.database,
          privileges: g.privileges,
        })),
      }));
  }

  async account(user: string, host: string): Promise<{ hash: string; plugin: string } | null> {
    const rows = await this.rows(
      `SELECT authentication_string AS hash, plugin FROM mysql.user WHERE User = ? AND Host = ? AND ${NOT_A_ROLE}`,
      [user, host],
    );
    const r = rows[0];
    return r ? { hash: String(r.hash ?? ''), plugin: String(r.plugin ?? '') } : null;
  }

  async getUser(user: string, host: string): Promise<DatabaseUser> {
    if (!(await this.account(user, host)))
      throw new RpcError('not-found', `There is no database user ${user}@${host}.`);
    const grants = (await this.grantRows(user, host)).get(accountKey(user, host)) ?? [];
    return { user, host, grants: grants.map((g) => ({ database: g.database, privileges: g.privileges })) };
  }

  private async requireAccount(user: string, host: string): Promise<{ hash: string; plugin: string }> {
    this.guardAccount(user);
    const a = await this.account(user, host);
    if (!a) throw new RpcError('not-found', `There is no database user ${user}@${host}.`);
    return a;
  }

  async createUser(
    user: string,
    host: string,
    password: string,
    intent: Intent = noIntent,
  ): Promise<DatabaseUser> {
    this.guardAccount(user);
    if (await this.account(user, host))
      throw new RpcError('already-exists', `The database user ${user}@${host} already exists.`);
    await intent({ op: 'create user', user, host, hash: nativePasswordHash(password) });
    await this.run(`CREATE USER ${quoteAccount(user, host)} ${identifiedBy(password)}`);
    const a = await this.account(user, host);
    if (a?.hash !== nativePasswordHash(password)) {
      if (a) await this.run(`DROP USER ${quoteAccount(user, host)}`);
      throw new RpcError(
        'failed-precondition',
        `The server did not store the new account ${user}@${host}; nothing was changed.`,
      );
    }
    return this.getUser(user, host);
  }

  async setPassword(
    user: string,
    host: string,
    password: string,
    intent: Intent = noIntent,
  ): Promise<DatabaseUser> {
    const before = await this.requireAccount(user, host);
    await intent({ op: 'set password', user, host, hash: nativePasswordHash(password), before: before.hash });
    await this.run(`ALTER USER ${quoteAccount(user, host)} ${identifiedBy(password)}`);
    const after = await this.account(user, host);
    if (after?.hash !== nativePasswordHash(password)) {
      if (isNativeHash(before.hash))
        await this.run(`ALTER USER ${quoteAccount(user, host)} ${identifiedByHash(before.hash)}`);
      throw new RpcError(
        'failed-precondition',
        `The server did not store the new password of ${user}@${host}; the old one was kept.`,
      );
    }
    return this.getUser(user, host);
  }

  async grant(
    user: string,
    host: string,
    database: string,
    privileges: DbPrivilege[],
    intent: Intent = noIntent,
  ): Promise<DatabaseUser> {
    await this.requireAccount(user, host);
    if (!(await this.getDatabase(database)))
      throw new RpcError('not-found', `There is no database ${database}; create it first.`);
    const before = await this.exactGrants(user, host, database);
    await intent({ op: 'grant', user, host, database, privileges, before });
    for (const g of before) await this.revokeStored(user, host, g);
    try {
      await this.run(
        `GRANT ${privilegeList(privileges)} ON ${grantTarget(database)} TO ${quoteAccount(user, host)}`,
      );
      const now = await this.exactGrants(user, host, database);
      const got = new Set(now.flatMap((g) => g.privileges));
      const missing = privileges.filter((p) => !got.has(p));
      if (missing.length > 0)
        throw new RpcError(
          'failed-precondition',
          `The server did not grant ${missing.join(', ')}; nothing was changed.`,
        );
    } catch (e) {
      for (const g of await this.exactGrants(user, host, database)) await this.revokeStored(user, host, g);
      await this.restoreGrants(before.map((row) => ({ user, host, row })));
      throw e;
    }
    return this.getUser(user, host);
  }

  async revoke(
    user: string,
    host: string,
    database: string,
    intent: Intent = noIntent,
  ): Promise<DatabaseUser> {
    await this.requireAccount(user, host);
    const before = await this.exactGrants(user, host, database);
    if (before.length === 0)
      throw new RpcError('not-found', `${user}@${host} has no privileges on the database ${database}.`);
    await intent({ op: 'revoke', user, host, database, before });
    try {
      for (const g of before) await this.revokeStored(user, host, g);
    } catch (e) {
      await this.restoreGrants(before.map((row) => ({ user, host, row })));
      throw e;
    }
    if ((await this.exactGrants(user, host, database)).length > 0)
      throw new RpcError(
        'internal',
        `Privileges of ${user}@${host} on ${database} remain after revoking them.`,
      );
    return this.getUser(user, host);
  }

  async dropUser(user: string, host: string, intent: Intent = noIntent): Promise<void> {
    await this.requireAccount(user, host);
    await intent({ op: 'drop user', user, host });
    await this.run(`DROP USER ${quoteAccount(user, host)}`);
    if (await this.account(user, host))
      throw new RpcError('internal', `The database user ${user}@${host} still exists after dropping it.`);
  }

  // --- helpers (also for recover.ts) --------------------------------------------------------

  /** DROP USER without the checks (recovery of an interrupted create). */
  async dropAccount(user: string, host: string): Promise<void> {
    await this.run(`DROP USER ${quoteAccount(user, host)}`);
  }

  /** Puts a stored native hash back (recovery of an interrupted password change). */
  async setHash(user: string, host: string, hash: string): Promise<void> {
    if (isNativeHash(hash))
      await this.run(`ALTER USER ${quoteAccount(user, host)} ${identifiedByHash(hash)}`);
  }

  /** Grant rows of one account on this database (stored escaped, or unescaped as the same pattern). */
  async exactGrants(user: string, host: string, database: string): Promise<GrantRow[]> {
    const rows = (await this.grantRows(user, host)).get(accountKey(user, host)) ?? [];
    return rows.filter((g) => g.database === database);
  }

  /** Every account's exact grants on a database. */
  private async grantsOn(database: string): Promise<{ user: string; host: string; row: GrantRow }[]> {
    const all = await this.grantRows();
    const out: { user: string; host: string; row: GrantRow }[] = [];
    for (const [key, rows] of all) {
      const { user, host } = parseKey(key);
      if (this.isProtectedUser(user)) continue;
      for (const row of rows) if (row.database === database) out.push({ user, host, row });
    }
    return out;
  }

  async revokeStored(user: string, host: string, row: GrantRow): Promise<void> {
    const target = storedGrantTarget(row.stored);
    const acct = quoteAccount(user, host);
    // `ALL PRIVILEGES` on a database does not include GRANT OPTION (the global form's
    // `ALL, GRANT OPTION` is not valid with ON): revoke it separately when it is there.
    if (row.privileges.some((p) => p !== 'GRANT OPTION'))
      await this.run(`REVOKE ALL PRIVILEGES ON ${target} FROM ${acct}`);
    if (row.privileges.includes('GRANT OPTION'))
      await this.run(`REVOKE GRANT OPTION ON ${target} FROM ${acct}`);
  }

  async restoreGrants(grants: { user: string; host: string; row: GrantRow }[]): Promise<void> {
    for (const { user, host, row } of grants) {
      const privs = row.privileges.filter((p) => p !== 'GRANT OPTION');
      const withGrant = row.privileges.includes('GRANT OPTION') ? ' WITH GRANT OPTION' : '';
      try {
        if (privs.length > 0 || withGrant !== '')
          await this.run(
            `GRANT ${privilegeList(privs.length > 0 ? privs : ['USAGE'])} ON ${storedGrantTarget(row.stored)} TO ${quoteAccount(user, host)}${withGrant}`,
          );
      } catch (e) {
        this.logger.error(
          { user, host, database: row.database, err: (e as Error).message },
          'could not restore a grant',
        );
      }
    }
  }
}

const noIntent: Intent = () => Promise.resolve();

const accountKey = (user: string, host: string): string => JSON.stringify([user, host]);
const parseKey = (key: string): { user: string; host: string } => {
  const [user = '', host = ''] = JSON.parse(key) as string[];
  return { user, host };
};

/** True when a stored grant pattern has a `_` or `%` that is not escaped (it covers several databases). */
export function hasUnescapedWildcard(stored: string): boolean {
  for (let i = 0; i < stored.length; i++) {
    const c = stored[i];
    if (c === '\\') i++;
    else if (c === '_' || c === '%') return true;
  }
  return false;
}

const toDatabase = (r: RowDataPacket): Database => ({
  name: String(r.name),
  sizeBytes: Number(r.size ?? 0),
  tables: Number(r.tables ?? 0),
  charset: String(r.charset ?? ''),
  collation: String(r.collation ?? ''),
});
