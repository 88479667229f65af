import type { Logger } from 'pino';
import { RpcError } from '../../shared/protocol/errors.ts';
import type { EventName } from '../../shared/protocol/index.ts';
import type { CallRecord, Journal } from '../journal/journal.ts';
import type { CallContext } from '../modules/types.ts';

export type CallMeta = Omit<CallContext, 'requestId' | 'signal' | 'logger' | 'progress' | 'intent'>;

/**
 * What a handler gets for one call. The AbortSignal and the child logger are built only when the
 * handler uses them (an AbortController + signal and a pino child cost more than a `ping`).
 */
export class Call implements CallContext {
  readonly peer: CallContext['peer'];
  readonly emit: CallContext['emit'];
  private controller: AbortController | undefined;
  private aborted = false;
  private child: Logger | undefined;
  /** The handler recorded an intent: it may have changed the host from here on. */
  noted = false;

  constructor(
    meta: CallMeta,
    private readonly event: EventName,
    readonly requestId: string | undefined,
    private readonly baseLogger: Logger,
    private readonly journal: { journal: Journal; record: CallRecord } | null = null,
  ) {
    this.peer = meta.peer;
    this.emit = meta.emit;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  get logger(): Logger {
    this.child ??= this.baseLogger.child({ event: this.event, requestId: this.requestId });
    return this.child;
  }

  get isAborted(): boolean {
    return this.aborted;
  }

  abort(): void {
    this.aborted = true;
    this.controller?.abort();
  }

  async intent(data: unknown): Promise<void> {
    if (this.aborted && !this.noted)
      throw new RpcError(
        'timeout',
        `The deadline of "${this.event}" passed before it changed anything; nothing was changed.`,
        { outcome: 'absent' },
      );
    if (this.journal) await this.journal.journal.note(this.journal.record, data);
    this.noted = true;
  }

  private step = 0;
  progress(message: string): void {
    if (this.requestId === undefined || this.aborted) return;
    this.step += 1;
    this.emit('progress', { requestId: this.requestId, event: this.event, step: this.step, message });
  }
}
