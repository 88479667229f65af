import type { Logger } from 'pino';
import { ZodObject, type z } from 'zod';
import {
  RpcError,
  errReply,
  isEventName,
  okReply,
  rpcEvents,
  type EventName,
  type ModuleName,
  type Reply,
} from '../../shared/protocol/index.ts';
import { redactParams } from '../../shared/protocol/redact.ts';
import { ExecError } from '../os/exec.ts';
import { PathGuardError } from '../os/files.ts';
import type { AnyAgentModule, CallContext, Handler } from '../modules/types.ts';
import { KeyedMutex } from './lock.ts';
import { RequestCache } from './idempotency.ts';

export type CallMeta = Omit<CallContext, 'requestId' | 'signal' | 'logger'>;

const MAX_PARAM_BYTES = 256 * 1024;

/** Turns zod issues into one sentence an admin can act on. */
export function describeZodError(error: z.ZodError): string {
  const parts = error.issues.slice(0, 5).map((i) => {
    const where = i.path.length > 0 ? `${i.path.join('.')}: ` : '';
    if (i.code === 'unrecognized_keys') return `${where}unknown field(s) ${i.keys.join(', ')}`;
    return `${where}${i.message}`;
  });
  return parts.join('; ');
}

const eventLabel = (event: unknown): string =>
  typeof event === 'string' ? event.slice(0, 80) : typeof event;

/** `undefined` or `{}`: a plain object with no keys of its own or inherited. */
function isEmptyPlainObject(v: unknown): boolean {
  if (v === undefined) return true;
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const _ in v) return false;
  return true;
}

const noParams = new WeakMap<z.ZodType, boolean>();
/**
 * Whether a request schema is `request({})`: a strict object whose only (optional) key is
 * requestId, so `{}` is valid and parses to `{}`. Anything else a caller sends still goes
 * through zod.
 */
export function takesNoParams(schema: z.ZodType): boolean {
  let v = noParams.get(schema);
  if (v === undefined) {
    v = false;
    if (schema instanceof ZodObject) {
      const keys = Object.keys(schema.shape);
      const strict = schema.safeParse({ unexpected: 1 }).success === false;
      const empty = schema.safeParse({});
      v =
        strict &&
        keys.every((k) => k === 'requestId') &&
        empty.success &&
        Object.keys(empty.data).length === 0;
    }
    noParams.set(schema, v);
  }
  return v;
}

/**
 * What a handler gets for one call. The AbortSignal and the child logger are built only when the
 * handler uses them (an AbortController + signal and a pino child cost more than a `ping`).
 */
class Call implements CallContext {
  readonly peer: CallContext['peer'];
  readonly emit: CallContext['emit'];
  private controller: AbortController | undefined;
  private aborted = false;
  private child: Logger | undefined;

  constructor(
    meta: CallMeta,
    private readonly event: EventName,
    readonly requestId: string | undefined,
    private readonly baseLogger: Logger,
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

  abort(): void {
    this.aborted = true;
    this.controller?.abort();
  }
}

/**
 * Resolves a call's reply once: the handler's outcome or the timeout, whichever comes first.
 * (A class rather than per-call closures: cheaper, and the bundle names every named closure.)
 */
class Once {
  settled = false;
  timer: NodeJS.Timeout | undefined;
  constructor(private readonly resolve: (reply: Reply<unknown>) => void) {}

  finish(reply: Reply<unknown>): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve(reply);
  }
}

/**
 * The agent's RPC router: validates every request against its schema, serialises mutations per
 * module, enforces a per-event timeout, answers retried mutations from the requestId cache, and
 * turns every outcome into the reply union. A bug becomes `internal` without a stack trace.
 */
export class Router {
  private readonly handlers = new Map<EventName, Handler<EventName>>();
  private readonly unavailableReason = new Map<ModuleName, string>();
  private readonly mutex = new KeyedMutex();
  private readonly cache = new RequestCache();

  constructor(
    private readonly logger: Logger,
    private readonly timeoutScale = 1,
  ) {}

  addModule(mod: AnyAgentModule): void {
    const a = mod.availability();
    if (!a.available)
      this.unavailableReason.set(mod.name, a.reason ?? `${mod.name} is not available on this host`);
    for (const [event, handler] of Object.entries(mod.handlers as Record<string, unknown>)) {
      if (!isEventName(event)) throw new Error(`module ${mod.name} registers unknown event ${event}`);
      if (rpcEvents[event].module !== mod.name)
        throw new Error(`event ${event} does not belong to ${mod.name}`);
      // Each module's handler map is typed per event; the router stores them by name.
      this.handlers.set(event, handler as Handler<EventName>);
    }
  }

  async dispatch(event: unknown, params: unknown, meta: CallMeta): Promise<Reply<unknown>> {
    const started = process.hrtime.bigint();
    const reply = await this.dispatchInner(event, params, meta);
    if (reply.ok) {
      if (this.logger.isLevelEnabled('debug')) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        this.logger.debug({ event: eventLabel(event), ms }, 'rpc ok');
      }
    } else {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.logger.info(
        { event: eventLabel(event), ms, code: reply.error.code, err: reply.error.message },
        'rpc failed',
      );
    }
    return reply;
  }

  private dispatchInner(
    event: unknown,
    params: unknown,
    meta: CallMeta,
  ): Promise<Reply<unknown>> | Reply<unknown> {
    if (!isEventName(event)) {
      return errReply({
        code: 'unsupported',
        message: `Unknown event ${JSON.stringify(String(event).slice(0, 80))}.`,
      });
    }
    const def = rpcEvents[event];
    const reason = this.unavailableReason.get(def.module);
    if (reason !== undefined) return errReply({ code: 'unsupported', message: reason });
    const handler = this.handlers.get(event);
    if (!handler) return errReply({ code: 'unsupported', message: `This agent does not handle "${event}".` });

    let req: { requestId?: string };
    if (isEmptyPlainObject(params) && takesNoParams(def.request)) {
      // `{}` for an event whose request is `request({})`: exactly what zod would return.
      req = {};
    } else {
      const input = params === undefined ? {} : params;
      let size: number;
      try {
        size = JSON.stringify(input)?.length ?? 0;
      } catch {
        return errReply({ code: 'invalid-argument', message: 'The request is not plain JSON.' });
      }
      if (size > MAX_PARAM_BYTES)
        return errReply({ code: 'invalid-argument', message: 'The request is too large.' });
      const parsed = def.request.safeParse(input);
      if (!parsed.success) {
        return errReply({ code: 'invalid-argument', message: describeZodError(parsed.error) });
      }
      req = parsed.data as { requestId?: string };
    }
    const requestId = req.requestId;

    if (!def.mutation) return this.invoke(event, handler, req, requestId, meta);
    if (requestId !== undefined) {
      const cached = this.cache.get(requestId, event);
      if (cached) return cached;
    }
    const p = this.mutex.run(def.module, () => this.invoke(event, handler, req, requestId, meta));
    if (requestId !== undefined) this.cache.set(requestId, event, p);
    return p;
  }

  /**
   * Runs the handler under the event's timeout: one timer per call, cleared when the handler
   * settles; on expiry the call's AbortSignal fires and the reply is `timeout` (a later result
   * of the handler is dropped, a later failure still logged).
   */
  private invoke(
    event: EventName,
    handler: Handler<EventName>,
    req: unknown,
    requestId: string | undefined,
    meta: CallMeta,
  ): Promise<Reply<unknown>> {
    const def = rpcEvents[event];
    const timeoutMs = def.timeoutMs * this.timeoutScale;
    const call = new Call(meta, event, requestId, this.logger);
    return new Promise<Reply<unknown>>((resolve) => {
      const once = new Once(resolve);
      once.timer = setTimeout(() => {
        if (once.settled) return;
        call.abort();
        once.finish(
          errReply({ code: 'timeout', message: `"${event}" did not finish within ${timeoutMs / 1000} s.` }),
        );
      }, timeoutMs);
      let work: Promise<unknown>;
      try {
        work = handler(req as never, call);
      } catch (err) {
        once.finish(this.errorToReply(event, err, req, call.logger));
        return;
      }
      work.then(
        (data) => once.finish(this.checkReply(event, data, call)),
        (err: unknown) => once.finish(this.errorToReply(event, err, req, call.logger)),
      );
    });
  }

  /** The handler's data against the event's reply schema: a mismatch is a bug, reported as `internal`. */
  private checkReply(event: EventName, data: unknown, call: Call): Reply<unknown> {
    const out = rpcEvents[event].reply.safeParse(data);
    if (out.success) return okReply(out.data);
    call.logger.error({ issues: out.error.issues }, 'handler returned data that does not match the contract');
    return errReply({ code: 'internal', message: `The agent produced an invalid reply for "${event}".` });
  }

  private errorToReply(event: EventName, err: unknown, req: unknown, logger: Logger): Reply<never> {
    if (err instanceof RpcError) return errReply(err.toBody());
    if (err instanceof PathGuardError)
      return errReply({ code: 'invalid-argument', message: `Path refused: ${err.message}.` });
    if (err instanceof ExecError && err.result === null)
      return errReply({ code: 'unavailable', message: `${err.message}.` });
    logger.error({ err, params: redactParams(event, req) }, 'handler failed');
    return errReply({
      code: 'internal',
      message: `"${event}" failed because of an internal error; see the agent log.`,
    });
  }
}
