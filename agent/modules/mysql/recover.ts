import { z } from 'zod';
import type { Recovered } from '../types.ts';
import type { GrantRow, MysqlAdmin } from './admin.ts';

/** Records a mysql mutation's intent in the agent's journal (CallContext.intent). */
export type Intent = (data: MysqlIntent) => Promise<void>;

const grantRow = z.strictObject({
  stored: z.string(),
  database: z.string(),
  privileges: z.array(z.string()),
});
const account = { user: z.string(), host: z.string() };

/**
 * What each mysql mutation records before its first statement. The native hashes (what
 * mysql.user holds anyway, never a password) let recovery tell whether a statement ran; the
 * journal file is 0600 in the agent's 0700 state directory and loses the intent when the call ends.
 */
const mysqlIntent = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('create database'), name: z.string() }),
  z.strictObject({
    op: z.literal('drop database'),
    name: z.string(),
    grants: z.array(z.strictObject({ ...account, row: grantRow })),
  }),
  z.strictObject({ op: z.literal('create user'), ...account, hash: z.string() }),
  z.strictObject({ op: z.literal('set password'), ...account, hash: z.string(), before: z.string() }),
  z.strictObject({
    op: z.literal('grant'),
    ...account,
    database: z.string(),
    privileges: z.array(z.string()),
    before: z.array(grantRow),
  }),
  z.strictObject({ op: z.literal('revoke'), ...account, database: z.string(), before: z.array(grantRow) }),
  z.strictObject({ op: z.literal('drop user'), ...account }),
]);
export type MysqlIntent = z.infer<typeof mysqlIntent>;

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && new Set([...a, ...b]).size === new Set(a).size;

/**
 * Settles a mysql mutation a killed agent left (AgentModule.recover). Single statements (create
 * and drop of databases and accounts, a password change) are atomic in MariaDB: recovery only
 * tells which way it went (an account created with another hash than asked is dropped). The
 * multi-statement ones roll back unless complete: a drop database whose database is still there
 * gets its revoked grants back; a grant or revoke that is not exactly in place puts the
 * account's previous grants on that database back.
 */
export async function recoverMysql(admin: MysqlAdmin, intent: unknown): Promise<Recovered> {
  const it = mysqlIntent.parse(intent);
  const restore = async (user: string, host: string, database: string, before: GrantRow[]): Promise<void> => {
    for (const g of await admin.exactGrants(user, host, database)) await admin.revokeStored(user, host, g);
    await admin.restoreGrants(before.map((row) => ({ user, host, row })));
  };
  switch (it.op) {
    case 'create database': {
      const db = await admin.getDatabase(it.name);
      return db ? { outcome: 'applied', data: db } : { outcome: 'absent' };
    }
    case 'drop database':
      if (!(await admin.getDatabase(it.name))) return { outcome: 'applied', data: { name: it.name } };
      await admin.restoreGrants(it.grants);
      return { outcome: 'absent' };
    case 'create user': {
      const a = await admin.account(it.user, it.host);
      if (a?.hash === it.hash) return { outcome: 'applied', data: await admin.getUser(it.user, it.host) };
      if (a) await admin.dropAccount(it.user, it.host);
      return { outcome: 'absent' };
    }
    case 'set password': {
      const a = await admin.account(it.user, it.host);
      if (!a) return { outcome: 'absent' };
      if (a.hash === it.hash) return { outcome: 'applied', data: await admin.getUser(it.user, it.host) };
      if (a.hash !== it.before) await admin.setHash(it.user, it.host, it.before);
      return { outcome: 'absent' };
    }
    case 'grant': {
      if (!(await admin.account(it.user, it.host))) return { outcome: 'absent' };
      const now = (await admin.exactGrants(it.user, it.host, it.database)).flatMap((g) => g.privileges);
      if (sameSet(now, it.privileges))
        return { outcome: 'applied', data: await admin.getUser(it.user, it.host) };
      await restore(it.user, it.host, it.database, it.before);
      return { outcome: 'absent' };
    }
    case 'revoke': {
      if (!(await admin.account(it.user, it.host))) return { outcome: 'absent' };
      if ((await admin.exactGrants(it.user, it.host, it.database)).length === 0)
        return { outcome: 'applied', data: await admin.getUser(it.user, it.host) };
      await restore(it.user, it.host, it.database, it.before);
      return { outcome: 'absent' };
    }
    case 'drop user':
      return (await admin.account(it.user, it.host))
        ? { outcome: 'absent' }
        : { outcome: 'applied', data: { user: it.user, host: it.host } };
  }
}
