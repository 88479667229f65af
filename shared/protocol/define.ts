import { z } from 'zod';
import type { ModuleName } from './hello.ts';

/** The longest deadline a caller may give (ms). */
export const MAX_DEADLINE_MS = 3_600_000;

/**
 * The envelope fields every request may carry (docs/protocol.md):
 * - requestId: a retried mutation with the same id (and the same parameters) acts once;
 * - deadlineMs: how long the caller waits for the reply, counted from sending. The agent answers
 *   by then (at the latest with `timeout`, saying whether the call changed anything) and starts
 *   no change after it.
 */
export const requestIdField = {
  requestId: z.uuid().optional(),
  deadlineMs: z.number().int().min(1).max(MAX_DEADLINE_MS).optional(),
};
export const ENVELOPE_KEYS: readonly string[] = Object.keys(requestIdField);

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
