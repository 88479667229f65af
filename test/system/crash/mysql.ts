// The MySQL crash cases (run by test/system/crash-mysql.test.ts, harness test/helpers/crash.ts):
// after each kill and restart the sandbox MariaDB — the same server, adopted by the restarted
// agent — is exactly as before the call or exactly as after it: its databases, the accounts
// (and which password each one's hash is) and the grants, read by the test over its own socket.
import { nativePasswordHash } from '../../../agent/modules/mysql/sql.ts';
import { requireProgram } from '../../helpers/programs.ts';
import { rootQuery } from '../../helpers/mysql.ts';
import { crashCase, crashSuite, type CrashHost } from '../../helpers/crash.ts';

const DB = 'killdb';
const USER = 'killuser';
const HOSTPART = 'localhost';
const PW1 = 'first-Passw0rd-1';
const PW2 = 'second-Passw0rd-2';
const acct = { user: USER, host: HOSTPART };
const other = { user: 'otheruser', host: HOSTPART };

const socket = (h: CrashHost): string => h.sb('run/mysqld.sock');

/** The state before a call, through the agent: which of the database, the user (PW1) and its SELECT grant exist. */
const ensure =
  (want: { db: boolean; user: boolean; grant: boolean }) =>
  async (h: CrashHost): Promise<void> => {
    const dbs = await h.ok('list databases', {});
    const users = await h.ok('list database users', {});
    const u = users.users.find((x) => x.user === USER && x.host === HOSTPART);
    const hash = (
      await rootQuery<{ hash: string }>(
        socket(h),
        'SELECT authentication_string AS hash FROM mysql.user WHERE User = ? AND Host = ?',
        [USER, HOSTPART],
      )
    )[0]?.hash;
    // Dropping and creating (never the event under test, which is armed to die at its first call).
    if (
      u &&
      (!want.user ||
        hash !== nativePasswordHash(PW1) ||
        JSON.stringify(u.grants) !==
          JSON.stringify(want.grant ? [{ database: DB, privileges: ['SELECT'] }] : []))
    )
      await h.ok('drop database user', acct);
    const hasDb = dbs.databases.some((d) => d.name === DB);
    if (hasDb && !want.db) await h.ok('drop database', { name: DB });
    if (!hasDb && want.db) await h.ok('create database', { name: DB });
    const now = (await h.ok('list database users', {})).users.find(
      (x) => x.user === USER && x.host === HOSTPART,
    );
    if (want.user && !now) {
      await h.ok('create database user', { ...acct, password: PW1 });
      if (want.grant) await h.ok('grant database', { ...acct, database: DB, privileges: ['SELECT'] });
    }
  };

const none = { db: false, user: false, grant: false };
const all = { db: true, user: true, grant: true };

export default crashSuite({
  name: 'mysql',
  requires() {
    requireProgram('mariadbd', 'mariadb-server');
    requireProgram('mariadb-install-db', 'mariadb-server');
  },
  modules: () => ({ mysql: {} }),
  async snapshot(h) {
    const dbs = await rootQuery<{ n: string }>(
      socket(h),
      "SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1",
    );
    const users = await rootQuery<{ User: string; Host: string; hash: string }>(
      socket(h),
      "SELECT User, Host, authentication_string AS hash FROM mysql.user WHERE User NOT IN ('root', 'mysql', 'mariadb.sys', 'PUBLIC', '') ORDER BY User, Host",
    );
    const grants = await rootQuery<Record<string, string>>(
      socket(h),
      "SELECT * FROM mysql.db WHERE User NOT IN ('root', 'mysql', 'mariadb.sys', 'PUBLIC', '') ORDER BY Db, User, Host",
    );
    const pw = (hash: string): string =>
      hash === nativePasswordHash(PW1) ? 'PW1' : hash === nativePasswordHash(PW2) ? 'PW2' : `? ${hash}`;
    return {
      databases: dbs.map((d) => d.n),
      users: users.map((u) => `${u.User}@${u.Host} ${pw(u.hash)}`),
      grants: grants.map((g) =>
        Object.entries(g)
          .filter(
            ([k, v]) => k === 'Db' || k === 'User' || k === 'Host' || (k.endsWith('_priv') && v === 'Y'),
          )
          .map(([k, v]) => (k.endsWith('_priv') ? k : `${k}=${v}`))
          .join(' '),
      ),
    };
  },
  cases: [
    crashCase({
      event: 'create database',
      params: () => ({ name: DB }),
      otherParams: () => ({ name: 'otherdb' }),
      setup: ensure(none),
    }),
    // Its grants are revoked before the drop: a multi-statement change.
    crashCase({
      event: 'drop database',
      params: () => ({ name: DB }),
      otherParams: () => ({ name: 'otherdb' }),
      setup: ensure(all),
    }),
    crashCase({
      event: 'create database user',
      params: () => ({ ...acct, password: PW2 }),
      otherParams: () => ({ ...other, password: PW2 }),
      setup: ensure(none),
    }),
    crashCase({
      event: 'set database password',
      params: () => ({ ...acct, password: PW2 }),
      otherParams: () => ({ ...acct, password: PW1 }),
      setup: ensure({ db: false, user: true, grant: false }),
    }),
    // Replaces SELECT by SELECT + INSERT: revoke, then grant.
    crashCase({
      event: 'grant database',
      params: () => ({ ...acct, database: DB, privileges: ['SELECT', 'INSERT'] }),
      otherParams: () => ({ ...acct, database: DB, privileges: ['SELECT', 'UPDATE'] }),
      setup: ensure(all),
    }),
    crashCase({
      event: 'revoke database',
      params: () => ({ ...acct, database: DB }),
      otherParams: () => ({ ...other, database: DB }),
      setup: ensure(all),
    }),
    crashCase({
      event: 'drop database user',
      params: () => acct,
      otherParams: () => other,
      setup: ensure(all),
    }),
  ],
});
