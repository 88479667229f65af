import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { normaliseSerial } from '../shared/pki/serial.ts';
import { atomicWrite } from './os/files.ts';

/** Revoked panel-certificate serials, pushed by the panel and kept as JSON in the state dir. */
export class RevocationList {
  private serials = new Set<string>();
  constructor(private readonly file: string) {
    try {
      const data: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (Array.isArray(data))
        this.serials = new Set(data.filter((s) => typeof s === 'string').map(normaliseSerial));
    } catch {
      /* none yet */
    }
  }

  get(): ReadonlySet<string> {
    return this.serials;
  }

  /** Stored first, then in force (a failed write leaves the list as it was, on disk and here). */
  async replace(serials: readonly string[]): Promise<void> {
    const next = new Set(serials.map(normaliseSerial));
    await fsp.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await atomicWrite(this.file, JSON.stringify([...next].sort(), null, 1), { mode: 0o600 });
    this.serials = next;
  }
}
