import type { Reply } from '../../shared/protocol/index.ts';
import { errReply } from '../../shared/protocol/reply.ts';

interface Entry {
  event: string;
  paramsHash: string;
  reply: Promise<Reply<unknown>>;
  at: number;
}

/** The answer to a requestId re-used for another event or with other parameters. */
export function reusedId(sameEvent: boolean): Reply<never> {
  return errReply({
    code: 'invalid-argument',
    message: sameEvent
      ? 'This requestId was already used for this event with other parameters; a new call needs a new requestId.'
      : 'This requestId was already used for another event.',
  });
}

/**
 * Remembers the replies of mutations by requestId in memory, so a retried call returns the first
 * result instead of acting twice. In-flight calls are shared too (a retry while the first still
 * runs waits for its final result). Bounded in size and age. What outlives a restart is in the
 * journal (agent/journal/journal.ts); this is the fast path in front of it.
 */
export class RequestCache {
  private readonly entries = new Map<string, Entry>();
  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 15 * 60_000,
  ) {}

  get(requestId: string, event: string, paramsHash: string): Promise<Reply<unknown>> | undefined {
    const e = this.entries.get(requestId);
    if (!e) return undefined;
    if (Date.now() - e.at > this.ttlMs) {
      this.entries.delete(requestId);
      return undefined;
    }
    if (e.event !== event || e.paramsHash !== paramsHash) return Promise.resolve(reusedId(e.event === event));
    return e.reply;
  }

  set(requestId: string, event: string, paramsHash: string, reply: Promise<Reply<unknown>>): void {
    this.entries.set(requestId, { event, paramsHash, reply, at: Date.now() });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  delete(requestId: string, reply: Promise<Reply<unknown>>): void {
    if (this.entries.get(requestId)?.reply === reply) this.entries.delete(requestId);
  }
}
