import { z } from 'zod';
import { rpcErrorSchema, type RpcErrorBody } from './errors.ts';

/** Every acknowledgement is one of these two shapes. */
export type Reply<T> = { ok: true; data: T } | { ok: false; error: RpcErrorBody };

const buildReplySchema = <T extends z.ZodType>(data: T) =>
  z.discriminatedUnion('ok', [
    z.strictObject({ ok: z.literal(true), data }),
    z.strictObject({ ok: z.literal(false), error: rpcErrorSchema }),
  ]);

const replySchemas = new WeakMap<z.ZodType, unknown>();

/**
 * The reply schema of an event's data schema, built once per data schema: building a zod schema
 * costs hundreds of µs, parsing with it about one (the panel checks every reply; bench/rpc-latency).
 */
export const replySchema = <T extends z.ZodType>(data: T): ReturnType<typeof buildReplySchema<T>> => {
  let schema = replySchemas.get(data) as ReturnType<typeof buildReplySchema<T>> | undefined;
  if (!schema) {
    schema = buildReplySchema(data);
    replySchemas.set(data, schema);
  }
  return schema;
};

export const okReply = <T>(data: T): Reply<T> => ({ ok: true, data });
export const errReply = (error: RpcErrorBody): Reply<never> => ({ ok: false, error });
