import { z } from 'zod';

/** The fixed list of error codes an RPC reply may carry (design §4). */
export const ERROR_CODES = [
  'invalid-argument',
  'not-found',
  'already-exists',
  'failed-precondition',
  'unsupported',
  'timeout',
  'unavailable',
  'internal',
] as const;

export const errorCodeSchema = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof errorCodeSchema>;

export const rpcErrorSchema = z.strictObject({
  code: errorCodeSchema,
  message: z.string(),
  details: z.unknown().optional(),
});
export type RpcErrorBody = z.infer<typeof rpcErrorSchema>;

/**
 * An error meant for the caller. Handlers throw it; the router turns it into `{ ok: false, error }`.
 * Messages are written for an admin and must never contain secrets.
 */
export class RpcError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.details = details;
  }

  toBody(): RpcErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export const invalidArgument = (message: string, details?: unknown): RpcError =>
  new RpcError('invalid-argument', message, details);
