import { randomBytes } from 'node:crypto';
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
import { ENVELOPE_KEYS } from '../../shared/protocol/define.ts';
import type { AnyAgentModule, Handler } from '../modules/types.ts';
import { paramsHash, type CallRecord, type Journal } from '../journal/journal.ts';
import { killPoint, startKillCount, stopKillCount } from '../journal/kill-point.ts';
import { Call, type CallMeta } from './call.ts';
import { KeyedMutex } from './lock.ts';
import { RequestCache, reusedId } from './idempotency.ts';

export type { CallMeta } from './call.ts';

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
        keys.every((k) => ENVELOPE_KEYS.includes(k)) &&
        empty.success &&
        Object.keys(empty.data).length === 0;
    }
    noParams.set(schema, v);
  }
  return v;
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

/** Whether the call changed the host, when the agent cannot give its result in time. */
export type Outcome = 'absent' | 'unknown';

const timeoutReply = (event: string, ms: number, outcome: Outcome, why = ''): Reply<never> =>
  errReply({
    code: 'timeout',
    message:
      outcome === 'absent'
        ? `"${event}" could not ${why || 'finish'} within ${ms / 1000} s; nothing was changed.`
        : `"${event}" did not finish within ${ms / 1000} s; it goes on, and its outcome is not known yet (ask again with the same requestId).`,
    details: { outcome },
  });

/** A timeout reply saying the call changed nothing (a retry with the same requestId runs it again). */
const isAbsentTimeout = (r: Reply<unknown>): boolean =>
  !r.ok &&
  r.error.code === 'timeout' &&
  (r.error.details as { outcome?: unknown } | undefined)?.outcome === 'absent';

/** A mutation that is running: while past its deadline, its module is stuck. */
interface Running {
  event: EventName;
  since: number;
  deadlineAt: number;
}

/** What `call outcome` tells about a requestId (the panel resolves `unknown` with it). */
export type CallOutcome =
  | { state: 'running'; event: string }
  | { state: 'done'; event: string; reply: Reply<unknown> }
  | { state: 'absent'; event: string }
  | { state: 'unknown' };

/**
 * The agent's RPC router: validates every request against its schema, serialises mutations per
 * module, enforces each call's deadline, journals every mutation (agent/journal) and answers
 * retried mutations from the requestId records, and turns every outcome into the reply union. A
 * bug becomes `internal` without a stack trace.
 *
 * Deadlines: a call's deadline is the event's timeout or the caller's `deadlineMs`, whichever is
 * shorter, counted from when the request arrived (waiting for the module lock included). A
 * mutation that gets the lock after its deadline does not run; one that has not recorded its
 * intent is aborted (CallContext.intent refuses); one that has goes on to its end with the lock
 * held, and the caller is told its outcome is unknown. While a mutation runs past its deadline
 * (a hung service), new mutations of that module are refused at once (`unavailable`), never run
 * beside it.
 *
 * It knows every event's module from the plain-data catalog (shared/protocol/catalog.ts) and
 * builds no schema itself: a module's events are validated with the schemas its own code loaded
 * (shared/protocol/events/<module>.ts), so a module that is not loaded costs no schemas.
 */
export class Router {
  private readonly routes = new Map<EventName, Route>();
  private readonly modules = new Map<ModuleName, AnyAgentModule>();
  private readonly unavailableReason = new Map<ModuleName, string>();
  private readonly mutex: KeyedMutex;
  private readonly cache = new RequestCache();
  /** Mutations with a requestId from their arrival until they end (a retry meanwhile joins). */
  private readonly queued = new Map<
    string,
    { event: EventName; hash: string; final: Promise<Reply<unknown>> }
  >();
  private readonly running = new Map<ModuleName, Running>();
  private readonly hashKey: Uint8Array;

  constructor(
    private readonly logger: Logger,
    private readonly timeoutScale = 1,
    private readonly observer?: RouterObserver,
    private readonly journal: Journal | null = null,
  ) {
    this.mutex = new KeyedMutex(observer?.lockWait);
    this.hashKey = randomBytes(32);
  }

  addModule(mod: AnyAgentModule): void {
    const a = mod.availability();
    if (!a.available)
      this.unavailableReason.set(mod.name, a.reason ?? `${mod.name} is not available on this host`);
    this.modules.set(mod.name, mod);
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
    const receivedAt = Date.now();
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

    let req: { requestId?: string; deadlineMs?: number };
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
      req = parsed.data as { requestId?: string; deadlineMs?: number };
    }
    const requestId = req.requestId;
    const budgetMs = Math.min(def.timeoutMs * this.timeoutScale, req.deadlineMs ?? Infinity);
    const deadlineAt = receivedAt + budgetMs;

    if (!def.mutation) return this.invoke(name, route, req, requestId, meta, budgetMs);

    const busy = this.running.get(def.module);
    if (busy && receivedAt > busy.deadlineAt) {
      const s = Math.round((receivedAt - busy.since) / 1000);
      return errReply({
        code: 'unavailable',
        message: `${def.module} is stuck: "${busy.event}" started ${s} s ago and has not finished (a service it needs does not answer). Nothing was changed; try again when it has.`,
      });
    }
    const hash = paramsHash(this.journal?.hashKey ?? this.hashKey, name, req);
    if (requestId !== undefined) {
      const cached = this.cache.get(requestId, name, hash);
      if (cached) return withDeadline(cached, deadlineAt, name, budgetMs);
      // The same call still waiting for its module's lock: this retry shares its result.
      const q = this.queued.get(requestId);
      if (q && q.event === name && q.hash === hash) return withDeadline(q.final, deadlineAt, name, budgetMs);
    }
    return this.mutate(name, route, req, requestId, hash, meta, deadlineAt, budgetMs);
  }

  /**
   * One mutation: the journal's record first (a retry after a restart finds it), then the module
   * lock, the handler, and the record of its result. `first` answers this caller by its deadline;
   * `final` is the real result (what a retry gets), settled when the handler has really stopped.
   */
  private mutate(
    name: EventName,
    route: Route,
    req: unknown,
    requestId: string | undefined,
    hash: string,
    meta: CallMeta,
    deadlineAt: number,
    budgetMs: number,
  ): Promise<Reply<unknown>> {
    const { def } = route;
    let call: Call | null = null;
    let answer!: (r: Reply<unknown>) => void;
    let answered = false;
    const first = new Promise<Reply<unknown>>((resolve) => {
      answer = (r) => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        resolve(r);
      };
    });
    // The result of this call if it is the one that runs (what retries of its requestId share).
    let settle!: (r: Reply<unknown>) => void;
    const owned = new Promise<Reply<unknown>>((resolve) => (settle = resolve));
    const timer = setTimeout(
      () => {
        // Not started, or started without an intent (it can no longer change anything): absent.
        const changing = call !== null && (call.noted || this.modules.get(def.module)?.recover === undefined);
        call?.abort();
        answer(timeoutReply(name, budgetMs, changing ? 'unknown' : 'absent', 'start'));
      },
      Math.max(0, deadlineAt - Date.now()),
    );
    // In the lock (FIFO per module): what is known of this requestId first — a call that took it
    // while this one waited (memory), then the journal (a call before a restart). Only the call
    // that then runs becomes the requestId's entry in memory: a refused re-use (other
    // parameters) must never stand for the requestId, or the real retry would be refused.
    const final = this.mutex.run(def.module, async (): Promise<Reply<unknown>> => {
      if (requestId !== undefined) {
        const cached = this.cache.get(requestId, name, hash);
        if (cached) return cached;
      }
      if (requestId !== undefined && this.journal) {
        const known = await this.journal.lookup(requestId);
        if (known && known.event !== name) return reusedId(false);
        if (known && known.paramsHash !== hash) return reusedId(true);
        if (known?.state === 'done' && known.reply) return known.reply;
        if (known?.state === 'running')
          return errReply({
            code: 'unavailable',
            message: `An earlier attempt of this call was interrupted and could not be settled yet (${def.module} was not available when the agent started); nothing more was done.`,
          });
      }
      if (requestId !== undefined) {
        this.cache.set(requestId, name, hash, owned);
        // A call that changed nothing because of its deadline is not an answer to keep.
        void owned.then((r) => {
          if (isAbsentTimeout(r)) this.cache.delete(requestId, owned);
        });
      }
      {
        if (answered || Date.now() >= deadlineAt)
          return timeoutReply(name, budgetMs, 'absent', 'start (it waited for other changes)');
        const armed = startKillCount(requestId);
        let record: CallRecord | null = null;
        try {
          if (this.journal) record = await this.journal.begin(name, requestId, hash);
        } catch (err) {
          if (armed) stopKillCount();
          return this.errorToReply(name, def, err, req, this.logger);
        }
        const c = new Call(
          meta,
          name,
          requestId,
          this.logger,
          record && this.journal ? { journal: this.journal, record } : null,
        );
        call = c;
        if (answered) c.abort();
        this.running.set(def.module, { event: name, since: Date.now(), deadlineAt });
        let out: Reply<unknown>;
        try {
          out = await this.runHandler(name, route, req, c);
          if (record && this.journal) {
            const state = !c.noted && !out.ok ? 'rolled-back' : 'done';
            await this.journal
              .finish(record, state, out)
              .catch((err: unknown) =>
                this.logger.error({ err, event: name }, 'could not record the outcome of a call'),
              );
          }
          // Recorded, not yet answered: a kill here loses only the reply (a retry gets it).
          killPoint();
        } finally {
          this.running.delete(def.module);
          if (armed) stopKillCount();
        }
        return out;
      }
    });
    if (requestId !== undefined && !this.queued.has(requestId)) {
      this.queued.set(requestId, { event: name, hash, final });
      void final.then(() => {
        if (this.queued.get(requestId)?.final === final) this.queued.delete(requestId);
      });
    }
    void final.then((r) => {
      settle(r);
      answer(r);
    });
    return first;
  }

  /** Runs a handler to its end (no timer: the caller's deadline is handled around it). */
  private async runHandler(
    name: EventName,
    { handler, def }: Route,
    req: unknown,
    call: Call,
  ): Promise<Reply<unknown>> {
    try {
      const data = await handler(req as never, call);
      return this.checkReply(name, def, data, call);
    } catch (err) {
      return this.errorToReply(name, def, err, req, call.logger);
    }
  }

  /**
   * Runs a read under its deadline: one timer per call, cleared when the handler settles; on
   * expiry the call's AbortSignal fires and the reply is `timeout` (a later result of the
   * handler is dropped, a later failure still logged).
   */
  private invoke(
    event: EventName,
    route: Route,
    req: unknown,
    requestId: string | undefined,
    meta: CallMeta,
    budgetMs: number,
  ): Promise<Reply<unknown>> {
    const call = new Call(meta, event, requestId, this.logger);
    return new Promise<Reply<unknown>>((resolve) => {
      let settled = false;
      const finish = (reply: Reply<unknown>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(reply);
      };
      const timer = setTimeout(() => {
        call.abort();
        finish(
          errReply({ code: 'timeout', message: `"${event}" did not finish within ${budgetMs / 1000} s.` }),
        );
      }, budgetMs);
      void this.runHandler(event, route, req, call).then(finish);
    });
  }

  /**
   * Settles the mutations a killed agent left unfinished (agent start, after the modules
   * started): each module completes or undoes its own (AgentModule.recover) and the journal
   * keeps the result for retries and for `call outcome`.
   */
  async recover(unfinished: readonly CallRecord[]): Promise<void> {
    const journal = this.journal;
    if (!journal) return;
    for (const rec of unfinished) {
      const module = eventModule(rec.event);
      const mod = module === undefined ? undefined : this.modules.get(module);
      const log = this.logger.child({ event: rec.event, requestId: rec.requestId });
      if (rec.intent === undefined) {
        await journal.finish(rec, 'rolled-back', timeoutReply(rec.event, 0, 'absent'));
        continue;
      }
      if (module === undefined || !mod || this.unavailableReason.has(module)) {
        log.warn('an interrupted change waits for its module to be available');
        continue;
      }
      if (!mod.recover) {
        log.error('an interrupted change of a module without recovery: its outcome is unknown');
        await journal.finish(
          rec,
          'done',
          errReply({
            code: 'internal',
            message: `The agent stopped during "${rec.event}" and cannot tell whether it changed the host; check it.`,
          }),
        );
        continue;
      }
      try {
        const r = await mod.recover(rec.event as never, rec.intent);
        const def = loadedEventDef(rec.event as EventName);
        if (r.outcome === 'applied') {
          const data = def ? def.reply.parse(r.data) : r.data;
          await journal.finish(rec, 'done', okReply(data));
          log.warn('an interrupted change was completed');
        } else {
          await journal.finish(
            rec,
            'rolled-back',
            errReply({
              code: 'failed-precondition',
              message: `The agent stopped during "${rec.event}"; what it had done was undone, so nothing was changed.`,
              details: { outcome: 'absent' },
            }),
          );
          log.warn('an interrupted change was undone');
        }
      } catch (err) {
        log.error({ err }, 'recovering an interrupted change failed; it is tried again at the next start');
      }
    }
  }

  /** The journal's word on a requestId (event `call outcome`). */
  async outcome(requestId: string): Promise<CallOutcome> {
    const rec = this.journal ? await this.journal.lookup(requestId) : null;
    if (!rec) return { state: 'unknown' };
    if (rec.state === 'running') return { state: 'running', event: rec.event };
    if (rec.state === 'rolled-back' || !rec.reply) return { state: 'absent', event: rec.event };
    return { state: 'done', event: rec.event, reply: rec.reply };
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

/** A retry that waits for the first call's result still answers by its own deadline. */
function withDeadline(
  p: Promise<Reply<unknown>>,
  deadlineAt: number,
  event: string,
  budgetMs: number,
): Promise<Reply<unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Reply<unknown>>((resolve) => {
    timer = setTimeout(
      () => resolve(timeoutReply(event, budgetMs, 'unknown')),
      Math.max(0, deadlineAt - Date.now()),
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
