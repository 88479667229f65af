import { z } from 'zod';
import { rpcErrorSchema, type RpcErrorBody } from './errors.ts';

/** Every acknowledgement is one of these two shapes. */
export type Reply<T> = { ok: true; data: T } | { ok: false; error: RpcErrorBody };

export const replySchema = <T extends z.ZodType>(data: T) =>
  z.discriminatedUnion('ok', [
    z.strictObject({ ok: z.literal(true), data }),
    z.strictObject({ ok: z.literal(false), error: rpcErrorSchema }),
  ]);

export const okReply = <T>(data: T): Reply<T> => ({ ok: true, data });
export const errReply = (error: RpcErrorBody): Reply<never> => ({ ok: false, error });
