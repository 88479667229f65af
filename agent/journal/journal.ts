import { createHmac, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ENVELOPE_KEYS } from '../../shared/protocol/define.ts';
import { rpcErrorSchema } from '../../shared/protocol/errors.ts';
import type { Reply } from '../../shared/protocol/reply.ts';
import { atomicWrite, readIfExists } from '../os/files.ts';
import { killPoint } from './kill-point.ts';

/**
 * The agent's write-ahead journal of calls (docs/architecture.md, "Crash safety"). One small file
 * per mutation in `<stateDir>/calls/`, written and fsynced before the handler runs:
 *
 * - `running`: the call started; `intent` is what the handler recorded (CallContext.intent)
 *   before its first change of the host. An agent that starts and finds one asks the module to
 *   complete or undo it (AgentModule.recover), so a kill leaves every change applied or absent.
 * - `done`: the call ended; `reply` is what it answered. Kept for calls with a requestId (a retry
 *   after a restart gets the same reply), bounded in number and age.
 * - `rolled-back`: recovery undid it (or it never changed anything): a retry runs it afresh.
 *
 * `paramsHash` is an HMAC of the event and its parameters with a key of this agent's, so a
 * requestId re-used with other parameters is refused, and no password can be guessed from it.
 */
export type CallState = 'running' | 'done' | 'rolled-back';

const recordSchema = z.strictObject({
  format: z.literal(1),
  key: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  requestId: z.string().nullable(),
  event: z.string().max(80),
  paramsHash: z.string().regex(/^[0-9a-f]{64}$/),
  startedAt: z.number(),
  state: z.enum(['running', 'done', 'rolled-back']),
  intent: z.unknown().optional(),
  reply: z
    .discriminatedUnion('ok', [
      z.strictObject({ ok: z.literal(true), data: z.unknown() }),
      z.strictObject({ ok: z.literal(false), error: rpcErrorSchema }),
    ])
    .optional(),
  finishedAt: z.number().optional(),
});
export type CallRecord = z.infer<typeof recordSchema>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Canonical JSON (sorted keys) so the same parameters always hash the same. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** HMAC of an event and its parameters without the envelope (requestId, deadlineMs). */
export function paramsHash(key: Uint8Array, event: string, params: unknown): string {
  const rest = { ...(params as Record<string, unknown>) };
  for (const k of ENVELOPE_KEYS) delete rest[k];
  return createHmac('sha256', key).update(event).update('\0').update(canonical(rest)).digest('hex');
}

export interface JournalLimits {
  /** Finished records kept for retries (oldest dropped first). */
  maxRecords: number;
  /** How long a finished record answers retries. */
  maxAgeMs: number;
}

export const DEFAULT_LIMITS: JournalLimits = { maxRecords: 10_000, maxAgeMs: 24 * 3600_000 };

export class Journal {
  readonly dir: string;
  private key: Buffer = randomBytes(32);
  /** Finished records with a requestId, oldest first (key → finishedAt). */
  private readonly kept = new Map<string, number>();

  constructor(
    stateDir: string,
    private readonly limits: JournalLimits = DEFAULT_LIMITS,
  ) {
    this.dir = path.join(stateDir, 'calls');
  }

  /** Creates the directory and the hash key; lists what is kept and what is unfinished. */
  async open(): Promise<CallRecord[]> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const keyFile = path.join(this.dir, '.key');
    let key = await readIfExists(keyFile);
    if (key === null || !/^[0-9a-f]{64}$/.test(key.trim())) {
      key = randomBytes(32).toString('hex');
      await atomicWrite(keyFile, key, { mode: 0o600 });
    }
    this.key = Buffer.from(key.trim(), 'hex');
    const unfinished: CallRecord[] = [];
    const finished: { key: string; at: number }[] = [];
    for (const name of await fsp.readdir(this.dir)) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const rec = await this.readFile(path.join(this.dir, name));
      if (!rec || `${rec.key}.json` !== name) {
        await fsp.rm(path.join(this.dir, name), { force: true });
        continue;
      }
      if (rec.state === 'running') unfinished.push(rec);
      else finished.push({ key: rec.key, at: rec.finishedAt ?? rec.startedAt });
    }
    finished.sort((a, b) => a.at - b.at);
    for (const f of finished) this.kept.set(f.key, f.at);
    await this.prune();
    return unfinished.sort((a, b) => a.startedAt - b.startedAt);
  }

  /** The key of `paramsHash` (kept in the journal directory, so hashes survive restarts). */
  get hashKey(): Uint8Array {
    return this.key;
  }

  /** The record of a requestId, if one is kept. */
  async lookup(requestId: string): Promise<CallRecord | null> {
    if (!UUID.test(requestId)) return null;
    const rec = await this.readFile(this.fileOf(requestId.toLowerCase()));
    if (rec && rec.state !== 'running') {
      const at = rec.finishedAt ?? rec.startedAt;
      if (Date.now() - at > this.limits.maxAgeMs) return null;
    }
    return rec;
  }

  /** Writes (fsynced) the `running` record of a call before its handler runs. */
  async begin(event: string, requestId: string | undefined, paramsHash: string): Promise<CallRecord> {
    const key =
      requestId !== undefined && UUID.test(requestId)
        ? requestId.toLowerCase()
        : `x-${randomBytes(12).toString('hex')}`;
    const rec: CallRecord = {
      format: 1,
      key,
      requestId: requestId ?? null,
      event,
      paramsHash,
      startedAt: Date.now(),
      state: 'running',
    };
    this.kept.delete(key);
    await this.write(rec);
    killPoint();
    return rec;
  }

  /** Adds what the handler is about to change (fsynced before the handler's first change). */
  async note(rec: CallRecord, intent: unknown): Promise<void> {
    rec.intent = intent;
    await this.write(rec);
    killPoint();
  }

  /**
   * The call ended (or recovery settled it): kept with its reply when it has a requestId,
   * otherwise removed.
   */
  async finish(rec: CallRecord, state: Exclude<CallState, 'running'>, reply: Reply<unknown>): Promise<void> {
    rec.state = state;
    rec.reply = reply;
    rec.finishedAt = Date.now();
    delete rec.intent;
    if (rec.requestId === null) {
      await fsp.rm(this.fileOf(rec.key), { force: true });
      return;
    }
    await this.write(rec);
    this.kept.set(rec.key, rec.finishedAt);
    if (this.kept.size > this.limits.maxRecords) await this.prune();
  }

  /** Drops finished records past the age limit and the oldest beyond the count limit. */
  private async prune(): Promise<void> {
    const now = Date.now();
    for (const [key, at] of this.kept) {
      if (this.kept.size <= this.limits.maxRecords && now - at <= this.limits.maxAgeMs) break;
      this.kept.delete(key);
      await fsp.rm(this.fileOf(key), { force: true });
    }
  }

  private fileOf(key: string): string {
    return path.join(this.dir, `${key}.json`);
  }

  private async write(rec: CallRecord): Promise<void> {
    await atomicWrite(this.fileOf(rec.key), JSON.stringify(rec), { mode: 0o600 });
  }

  private async readFile(file: string): Promise<CallRecord | null> {
    const text = await readIfExists(file).catch(() => null);
    if (text === null) return null;
    try {
      const r = recordSchema.safeParse(JSON.parse(text));
      return r.success ? r.data : null;
    } catch {
      return null;
    }
  }
}
