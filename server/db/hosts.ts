import type { Statement } from 'better-sqlite3';
import type { Db } from './database.ts';

export type HostMode = 'forward' | 'reverse';

export interface HostRow {
  id: string;
  name: string;
  address: string;
  port: number;
  /** forward: the panel dials the agent; reverse: the agent dials the panel. */
  mode: HostMode;
  status: 'pending' | 'enrolled';
  cert_serial: string | null;
  cert_not_after: number | null;
  created_at: number;
  enrolled_at: number | null;
}

/** The hosts table. */
export class HostsRepo {
  /** Prepared on first use: every host call looks its host up. */
  private byId: Statement | null = null;

  constructor(private readonly db: Db) {}

  list(): HostRow[] {
    return this.db.prepare('SELECT * FROM hosts ORDER BY name').all() as HostRow[];
  }

  get(id: string): HostRow | null {
    this.byId ??= this.db.prepare('SELECT * FROM hosts WHERE id = ?');
    return (this.byId.get(id) as HostRow | undefined) ?? null;
  }

  getByName(name: string): HostRow | null {
    return (this.db.prepare('SELECT * FROM hosts WHERE name = ?').get(name) as HostRow | undefined) ?? null;
  }

  insert(h: { id: string; name: string; address: string; port: number; mode?: HostMode }): HostRow {
    this.db
      .prepare(
        'INSERT INTO hosts (id, name, address, port, mode, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(h.id, h.name, h.address, h.port, h.mode ?? 'forward', 'pending', Date.now());
    const row = this.get(h.id);
    if (!row) throw new Error('host insert failed');
    return row;
  }

  markEnrolled(id: string, serial: string, notAfter: number): void {
    this.db
      .prepare(
        "UPDATE hosts SET status = 'enrolled', cert_serial = ?, cert_not_after = ?, enrolled_at = COALESCE(enrolled_at, ?) WHERE id = ?",
      )
      .run(serial, notAfter, Date.now(), id);
  }

  update(id: string, fields: Partial<Pick<HostRow, 'name' | 'address' | 'port' | 'mode'>>): void {
    const sets: string[] = [];
    const args: unknown[] = [];
    for (const [k, v] of Object.entries(fields)) {
      sets.push(`${k} = ?`);
      args.push(v);
    }
    if (sets.length === 0) return;
    this.db.prepare(`UPDATE hosts SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM hosts WHERE id = ?').run(id);
  }
}
