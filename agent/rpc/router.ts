import type { Logger } from 'pino';
import type { z } from 'zod';
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
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const name = typeof event === 'string' ? event.slice(0, 80) : typeof event;
    if (reply.ok) this.logger.debug({ event: name, ms }, 'rpc ok');
    else
      this.logger.info({ event: name, ms, code: reply.error.code, err: reply.error.message }, 'rpc failed');
    return reply;
  }

  private async dispatchInner(event: unknown, params: unknown, meta: CallMeta): Promise<Reply<unknown>> {
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
    const req = parsed.data as { requestId?: string };
    const requestId = req.requestId;

    const run = (): Promise<Reply<unknown>> => this.invoke(event, handler, req, requestId, meta);
    if (!def.mutation) return run();
    if (requestId !== undefined) {
      const cached = this.cache.get(requestId, event);
      if (cached) return cached;
    }
    const p = this.mutex.run(def.module, run);
    if (requestId !== undefined) this.cache.set(requestId, event, p);
    return p;
  }

  private async invoke(
    event: EventName,
    handler: Handler<EventName>,
    req: unknown,
    requestId: string | undefined,
    meta: CallMeta,
  ): Promise<Reply<unknown>> {
    const def = rpcEvents[event];
    const timeoutMs = def.timeoutMs * this.timeoutScale;
    const controller = new AbortController();
    const logger = this.logger.child({ event, requestId });
    const ctx: CallContext = { ...meta, requestId, signal: controller.signal, logger };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Reply<unknown>>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve(
          errReply({ code: 'timeout', message: `"${event}" did not finish within ${timeoutMs / 1000} s.` }),
        );
      }, timeoutMs);
    });
    try {
      const work = handler(req as never, ctx).then(
        (data) => {
          const out = def.reply.safeParse(data);
          if (!out.success) {
            logger.error(
              { issues: out.error.issues },
              'handler returned data that does not match the contract',
            );
            return errReply({
              code: 'internal',
              message: `The agent produced an invalid reply for "${event}".`,
            });
          }
          return okReply(out.data);
        },
        (err: unknown) => this.errorToReply(event, err, req, logger),
      );
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
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
