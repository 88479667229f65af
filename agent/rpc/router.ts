import type { Logger } from 'pino';
import { ZodObject, type z } from 'zod';
import type { EventDef } from '../../shared/protocol/define.ts';
import { RpcError } from '../../shared/protocol/errors.ts';
import type { EventName, ModuleName } from '../../shared/protocol/index.ts';
import { errReply, okReply, type Reply } from '../../shared/protocol/reply.ts';
import { eventModule, loadedEventDef } from '../../shared/protocol/catalog.ts';
import { redactFields } from '../../shared/protocol/redact-fields.ts';
import { describeZodError } from '../../shared/protocol/describe.ts';
import { ExecError } from '../os/exec.ts';
import { PathGuardError } from '../os/files.ts';
import { resourceFault } from '../os/resource-fault.ts';
import type { AnyAgentModule, CallContext, Handler } from '../modules/types.ts';
import { KeyedMutex } from './lock.ts';
import { RequestCache } from './idempotency.ts';

export type CallMeta = Omit<CallContext, 'requestId' | 'signal' | 'logger' | 'progress'>;

const MAX_PARAM_BYTES = 256 * 1024;

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

  private step = 0;
  progress(message: string): void {
    if (this.requestId === undefined || this.aborted) return;
    this.step += 1;
    this.emit('progress', { requestId: this.requestId, event: this.event, step: this.step, message });
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

/** Hooks for the agent's metrics (agent/metrics.ts); module and outcome are bounded words. */
export interface RouterObserver {
  lockWait: (module: string, seconds: number) => void;
  callStarted: () => void;
  callFinished: (module: string, outcome: string) => void;
}

/** The call's id as the panel sent it (logged with the call; validated later by the schema). */
const requestIdOf = (params: unknown): string | undefined => {
  const id =
    typeof params === 'object' && params !== null ? (params as { requestId?: unknown }).requestId : undefined;
  return typeof id === 'string' ? id.slice(0, 64) : undefined;
};

/** A handled event: its handler and its definition (schemas, timeout, secrets). */
interface Route {
  handler: Handler<EventName>;
  def: EventDef;
}

/**
 * The agent's RPC router: validates every request against its schema, serialises mutations per
 * module, enforces a per-event timeout, answers retried mutations from the requestId cache, and
 * turns every outcome into the reply union. A bug becomes `internal` without a stack trace.
 *
 * It knows every event's module from the plain-data catalog (shared/protocol/catalog.ts) and
 * builds no schema itself: a module's events are validated with the schemas its own code loaded
 * (shared/protocol/events/<module>.ts), so a module that is not loaded costs no schemas.
 */
export class Router {
  private readonly routes = new Map<EventName, Route>();
  private readonly unavailableReason = new Map<ModuleName, string>();
  private readonly mutex: KeyedMutex;
  private readonly cache = new RequestCache();

  constructor(
    private readonly logger: Logger,
    private readonly timeoutScale = 1,
    private readonly observer?: RouterObserver,
  ) {
    this.mutex = new KeyedMutex(observer?.lockWait);
  }

  addModule(mod: AnyAgentModule): void {
    const a = mod.availability();
    if (!a.available)
      this.unavailableReason.set(mod.name, a.reason ?? `${mod.name} is not available on this host`);
    for (const [event, handler] of Object.entries(mod.handlers as Record<string, unknown>)) {
      const owner = eventModule(event);
      if (owner === undefined) throw new Error(`module ${mod.name} registers unknown event ${event}`);
      if (owner !== mod.name) throw new Error(`event ${event} does not belong to ${mod.name}`);
      const def = loadedEventDef(event as EventName);
      if (!def || def.module !== mod.name)
        throw new Error(
          `module ${mod.name} handles "${event}" without its schemas (import shared/protocol/events/${mod.name}.ts)`,
        );
      // Each module's handler map is typed per event; the router stores them by name.
      this.routes.set(event as EventName, { handler: handler as Handler<EventName>, def });
    }
  }

  async dispatch(event: unknown, params: unknown, meta: CallMeta): Promise<Reply<unknown>> {
    const started = process.hrtime.bigint();
    this.observer?.callStarted();
    const reply = await this.dispatchInner(event, params, meta);
    this.observer?.callFinished(eventModule(event) ?? 'other', reply.ok ? 'ok' : reply.error.code);
    if (reply.ok) {
      if (this.logger.isLevelEnabled('debug')) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        this.logger.debug({ event: eventLabel(event), requestId: requestIdOf(params), ms }, 'rpc ok');
      }
    } else {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.logger.info(
        {
          event: eventLabel(event),
          requestId: requestIdOf(params),
          ms,
          code: reply.error.code,
          err: reply.error.message,
        },
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
    const module = eventModule(event);
    if (module === undefined) {
      return errReply({
        code: 'unsupported',
        message: `Unknown event ${JSON.stringify(String(event).slice(0, 80))}.`,
      });
    }
    const reason = this.unavailableReason.get(module);
    if (reason !== undefined) return errReply({ code: 'unsupported', message: reason });
    const name = event as EventName;
    const route = this.routes.get(name);
    if (!route) return errReply({ code: 'unsupported', message: `This agent does not handle "${name}".` });
    const { def } = route;

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

    if (!def.mutation) return this.invoke(name, route, req, requestId, meta);
    if (requestId !== undefined) {
      const cached = this.cache.get(requestId, name);
      if (cached) return cached;
    }
    const p = this.mutex.run(def.module, () => this.invoke(name, route, req, requestId, meta));
    if (requestId !== undefined) this.cache.set(requestId, name, p);
    return p;
  }

  /**
   * Runs the handler under the event's timeout: one timer per call, cleared when the handler
   * settles; on expiry the call's AbortSignal fires and the reply is `timeout` (a later result
   * of the handler is dropped, a later failure still logged).
   */
  private invoke(
    event: EventName,
    { handler, def }: Route,
    req: unknown,
    requestId: string | undefined,
    meta: CallMeta,
  ): Promise<Reply<unknown>> {
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
        once.finish(this.errorToReply(event, def, err, req, call.logger));
        return;
      }
      work.then(
        (data) => once.finish(this.checkReply(event, def, data, call)),
        (err: unknown) => once.finish(this.errorToReply(event, def, err, req, call.logger)),
      );
    });
  }

  /** The handler's data against the event's reply schema: a mismatch is a bug, reported as `internal`. */
  private checkReply(event: EventName, def: EventDef, data: unknown, call: Call): Reply<unknown> {
    const out = def.reply.safeParse(data);
    if (out.success) return okReply(out.data);
    call.logger.error({ issues: out.error.issues }, 'handler returned data that does not match the contract');
    return errReply({ code: 'internal', message: `The agent produced an invalid reply for "${event}".` });
  }

  private errorToReply(
    event: EventName,
    def: EventDef,
    err: unknown,
    req: unknown,
    logger: Logger,
  ): Reply<never> {
    if (err instanceof RpcError) return errReply(err.toBody());
    const fault = resourceFault(err); // a full disk, a quota, a read-only fs: the host's state, not a bug
    if (fault) return errReply(fault.toBody());
    if (err instanceof PathGuardError)
      return errReply({ code: 'invalid-argument', message: `Path refused: ${err.message}.` });
    if (err instanceof ExecError && err.result === null)
      return errReply({ code: 'unavailable', message: `${err.message}.` });
    logger.error({ err, params: redactFields(req, def.secrets) }, 'handler failed');
    return errReply({
      code: 'internal',
      message: `"${event}" failed because of an internal error; see the agent log.`,
    });
  }
}
