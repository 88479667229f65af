import type { Db } from '../db/database.ts';
import { coreMigrations, type Migration } from '../db/migrations.ts';

/**
 * The database takes a write: a write transaction begins and rolls back at once. Fails when the
 * connection is closed, the file cannot be locked for writing (read-only, failing disk), or
 * another process (a stuck CLI, a backup tool) holds the write lock for longer than `waitMs`.
 */
export function databaseWritable(db: Db, waitMs = 200): boolean {
  const saved = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma(`busy_timeout = ${Math.trunc(waitMs)}`);
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return true;
  } finally {
    db.pragma(`busy_timeout = ${saved}`);
  }
}

/** Every migration this panel knows has been applied. */
export function migrationsDone(db: Db, migrations: readonly Migration[] = coreMigrations): boolean {
  const done = new Set(
    (db.prepare('SELECT id FROM schema_migrations').all() as { id: number }[]).map((r) => r.id),
  );
  return migrations.every((m) => done.has(m.id));
}
