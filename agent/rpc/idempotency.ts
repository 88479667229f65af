import type { Reply } from '../../shared/protocol/index.ts';

interface Entry {
  event: string;
  reply: Promise<Reply<unknown>>;
  at: number;
}

/**
 * Remembers the replies of mutations by requestId, so a retried call returns the first result
 * instead of acting twice. In-flight calls are shared too (a retry while the first still runs
 * waits for it). Bounded in size and age.
 */
export class RequestCache {
  private readonly entries = new Map<string, Entry>();
  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 15 * 60_000,
  ) {}

  get(requestId: string, event: string): Promise<Reply<unknown>> | undefined {
    const e = this.entries.get(requestId);
    if (!e) return undefined;
    if (Date.now() - e.at > this.ttlMs) {
      this.entries.delete(requestId);
      return undefined;
    }
    if (e.event !== event)
      return Promise.resolve({
        ok: false,
        error: { code: 'invalid-argument', message: 'This requestId was already used for another event.' },
      });
    return e.reply;
  }

  set(requestId: string, event: string, reply: Promise<Reply<unknown>>): void {
    this.entries.set(requestId, { event, reply, at: Date.now() });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}
