import type { Labels } from '../../shared/validate/labels.ts';
import type { Db } from './database.ts';

/** The host_labels table: each host's `key=value` labels (validated in shared/validate/labels.ts). */
export class HostLabelsRepo {
  constructor(private readonly db: Db) {}

  get(hostId: string): Labels {
    const rows = this.db
      .prepare('SELECT key, value FROM host_labels WHERE host_id = ? ORDER BY key')
      .all(hostId) as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** Every host's labels (hosts without labels are absent). */
  all(): Map<string, Labels> {
    const rows = this.db
      .prepare('SELECT host_id, key, value FROM host_labels ORDER BY host_id, key')
      .all() as {
      host_id: string;
      key: string;
      value: string;
    }[];
    const out = new Map<string, Labels>();
    for (const r of rows) {
      let l = out.get(r.host_id);
      if (!l) out.set(r.host_id, (l = {}));
      l[r.key] = r.value;
    }
    return out;
  }

  /** Replaces a host's labels in one transaction. */
  set(hostId: string, labels: Readonly<Labels>): void {
    const del = this.db.prepare('DELETE FROM host_labels WHERE host_id = ?');
    const ins = this.db.prepare('INSERT INTO host_labels (host_id, key, value) VALUES (?, ?, ?)');
    this.db.transaction(() => {
      del.run(hostId);
      for (const [k, v] of Object.entries(labels)) ins.run(hostId, k, v);
    })();
  }
}
