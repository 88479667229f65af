import { z } from 'zod';
import type { ModuleName } from './hello.ts';

/** Every request may carry a requestId: a retried mutation with the same id acts once. */
export const requestIdField = { requestId: z.uuid().optional() };

export interface EventDef<
  Req extends z.ZodType = z.ZodType,
  Res extends z.ZodType = z.ZodType,
  M extends ModuleName = ModuleName,
> {
  module: M;
  /** Mutations take the module lock and are cached by requestId. */
  mutation: boolean;
  request: Req;
  reply: Res;
  /** Default time the router allows the handler, in ms. */
  timeoutMs: number;
  /** Fields of the request that are secrets: redacted in logs and in the audit log. */
  secrets?: readonly string[];
  summary: string;
}

/** Builds a strict request schema (unknown keys rejected) that accepts an optional requestId. */
export const request = <S extends z.ZodRawShape>(shape: S) => z.strictObject({ ...shape, ...requestIdField });

export const defineEvent = <M extends ModuleName, Req extends z.ZodType, Res extends z.ZodType>(
  def: EventDef<Req, Res, M>,
): EventDef<Req, Res, M> => def;
