import { z } from 'zod';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { ReplyData } from '../../../shared/protocol/index.ts';
import { validateDatabaseName } from '../../../shared/validate/mysql.ts';
import { killPoint } from '../../journal/kill-point.ts';
import { quoteDb } from '../mysql/sql.ts';
import type { ChangeContext, DatabaseBackupSource, Recovered } from '../types.ts';
import { dumpFile, opKey, type BackupService } from './service.ts';

/** What a database restore records before its first change, and again before the swap. */
export const databaseRestoreIntent = z.strictObject({
  op: z.literal('restore database'),
  name: z.string(),
  snapshot: z.string(),
  before: z.string().nullable(),
  /** `ponio_rs_<key>`: the dump is loaded here first. */
  staging: z.string().regex(/^ponio_rs_[0-9a-f]{12}$/),
  /** `ponio_old_<key>`: the current tables, moved here by the swap, dropped after it. */
  old: z.string().regex(/^ponio_old_[0-9a-f]{12}$/),
  existed: z.boolean(),
  /** Before the swap: the tables of the live database and of the staging one. */
  live: z.array(z.string()),
  staged: z.array(z.string()),
  phase: z.enum(['loading', 'swapping', 'commit']),
});
type DatabaseRestoreIntent = z.infer<typeof databaseRestoreIntent>;

/**
 * Database names are PonIO's (validated, quoteDb re-checks them); table names come from the
 * server's catalogue and may hold any character: backtick-quoted with backticks doubled.
 */
const q = (name: string): string => (/^[A-Za-z0-9_]{1,64}$/.test(name) ? quoteDb(name) : quoteTable(name));
const quoteTable = (name: string): string => {
  if (name.includes('\0') || name.length > 64)
    throw new RpcError('failed-precondition', 'A table name the server listed cannot be quoted.');
  return `\`${name.replaceAll('`', '``')}\``;
};

async function tablesOf(db: DatabaseBackupSource, schema: string): Promise<{ name: string; type: string }[]> {
  const rows = await db.query(
    'SELECT TABLE_NAME AS n, TABLE_TYPE AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME',
    [schema],
  );
  return rows.map((r) => ({ name: String(r.n), type: String(r.t) }));
}

async function schemaExists(db: DatabaseBackupSource, schema: string): Promise<boolean> {
  const rows = await db.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [
    schema,
  ]);
  return rows.length > 0;
}

const dropIfExists = (db: DatabaseBackupSource, schema: string) =>
  db.query(`DROP DATABASE IF EXISTS ${q(schema)}`);

/**
 * Restores a database snapshot through validate → apply → verify → roll back. The dump is
 * loaded into a staging database (a kill or a bad dump leaves the live one untouched), checked,
 * then swapped in by one RENAME TABLE statement, which MariaDB applies atomically: the live
 * tables move to a scratch database and the restored ones take their place in the same step.
 * Database-level grants stay as they were (the database keeps its name). Views, stored routines
 * and events are not moved by RENAME TABLE: a snapshot with views is refused (docs/backups.md).
 */
export async function restoreDatabase(
  svc: BackupService,
  db: DatabaseBackupSource,
  snapshot: string,
  name: string,
  as: string | undefined,
  ctx: ChangeContext,
): Promise<ReplyData<'restore backup'>> {
  const v = validateDatabaseName(as ?? name);
  if (!v.ok) throw new RpcError('invalid-argument', v.message);
  const target = v.value;
  const existed = (await db.databases()).includes(target);
  if (target !== name && existed)
    throw new RpcError(
      'already-exists',
      `The database ${target} exists; restore into a name that is free, or into ${name} itself.`,
    );
  let before: string | null = null;
  if (existed) {
    ctx.progress(`Backing up the current state of ${target} first`);
    before = await svc.backupDatabase(target, 'pre-restore');
  }
  const key = opKey();
  const it: DatabaseRestoreIntent = {
    op: 'restore database',
    name: target,
    snapshot,
    before,
    staging: `ponio_rs_${key}`,
    old: `ponio_old_${key}`,
    existed,
    live: [],
    staged: [],
    phase: 'loading',
  };
  await ctx.intent(it);
  try {
    await db.query(`CREATE DATABASE ${q(it.staging)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    killPoint();
    ctx.progress('Loading the dump into a staging database');
    const client = await db.clientArgs();
    try {
      await svc.restic.dumpInto(snapshot, dumpFile(name), {
        bin: 'mariadb',
        args: [...client.args, '--default-character-set=utf8mb4', '--batch', '--', it.staging],
      });
    } finally {
      await client.done();
    }
    killPoint();
    const staged = await tablesOf(db, it.staging);
    if (staged.some((t) => t.type !== 'BASE TABLE'))
      throw new RpcError(
        'failed-precondition',
        `The snapshot of ${name} holds views; PonIO restores tables only (docs/backups.md). Nothing was changed.`,
      );
    const live = existed ? await tablesOf(db, target) : [];
    if (live.some((t) => t.type !== 'BASE TABLE'))
      throw new RpcError(
        'failed-precondition',
        `The database ${target} holds views; PonIO restores tables only (docs/backups.md). Nothing was changed.`,
      );

    it.live = live.map((t) => t.name);
    it.staged = staged.map((t) => t.name);
    it.phase = 'swapping';
    await ctx.intent(it);
    ctx.progress(`Swapping the restored tables into ${target}`);
    if (!existed)
      await db.query(`CREATE DATABASE ${q(target)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    await db.query(`CREATE DATABASE ${q(it.old)}`);
    killPoint();
    const moves = [
      ...live.map((t) => `${q(target)}.${q(t.name)} TO ${q(it.old)}.${q(t.name)}`),
      ...staged.map((t) => `${q(it.staging)}.${q(t.name)} TO ${q(target)}.${q(t.name)}`),
    ];
    if (moves.length > 0) await db.query(`RENAME TABLE ${moves.join(', ')}`);
    killPoint();
    // Verify: the live database now has exactly the restored tables.
    const now = (await tablesOf(db, target)).map((t) => t.name).join(',');
    if (now !== staged.map((t) => t.name).join(','))
      throw new RpcError('internal', `After the swap ${target} does not hold the restored tables.`);
    it.phase = 'commit';
    await ctx.intent(it);
  } catch (e) {
    ctx.progress('Rolling back');
    await rollBack(db, it);
    throw e;
  }
  await cleanUp(db, it);
  svc.logger.info({ database: target, snapshot }, 'database restored');
  return { kind: 'database', name: target, snapshot, before };
}

/** Undoes a restore before its commit point: the live tables go back if the swap happened. */
async function rollBack(db: DatabaseBackupSource, it: DatabaseRestoreIntent): Promise<void> {
  if (it.phase !== 'loading') {
    // RENAME TABLE is atomic: either the live tables are still in place or they are all in `old`.
    const inOld = (await schemaExists(db, it.old)) ? await tablesOf(db, it.old) : [];
    const inStaging = (await schemaExists(db, it.staging)) ? await tablesOf(db, it.staging) : [];
    const swapped = it.live.length > 0 ? inOld.length > 0 : it.staged.length > 0 && inStaging.length === 0;
    if (swapped) {
      // The restored tables leave, the original ones come back: again one atomic RENAME.
      if (!(await schemaExists(db, it.staging))) await db.query(`CREATE DATABASE ${q(it.staging)}`);
      const moves = [
        ...it.staged.map((t) => `${q(it.name)}.${q(t)} TO ${q(it.staging)}.${q(t)}`),
        ...it.live.map((t) => `${q(it.old)}.${q(t)} TO ${q(it.name)}.${q(t)}`),
      ];
      if (moves.length > 0) await db.query(`RENAME TABLE ${moves.join(', ')}`);
    }
    if (!it.existed && (await schemaExists(db, it.name)) && (await tablesOf(db, it.name)).length === 0)
      await dropIfExists(db, it.name);
  }
  await dropIfExists(db, it.old);
  await dropIfExists(db, it.staging);
}

async function cleanUp(db: DatabaseBackupSource, it: DatabaseRestoreIntent): Promise<void> {
  await dropIfExists(db, it.old);
  await dropIfExists(db, it.staging);
}

/** Settles a database restore a killed agent left: finished after the commit point, undone before. */
export async function recoverDatabaseRestore(
  db: DatabaseBackupSource,
  it: DatabaseRestoreIntent,
): Promise<Recovered> {
  if (it.phase === 'commit') {
    await cleanUp(db, it);
    return {
      outcome: 'applied',
      data: { kind: 'database', name: it.name, snapshot: it.snapshot, before: it.before },
    };
  }
  await rollBack(db, it);
  return { outcome: 'absent' };
}
