import type { Response } from 'express';
import type { Reply } from '../../shared/protocol/index.ts';
import { statusForCode } from '../http/errors.ts';

/**
 * Whether a failed call changed nothing (`absent`) or may have (`unknown`: a mutation that timed
 * out; the panel resolves it later and updates the audit log), when the reply says so.
 */
export function outcomeOfError(error: { details?: unknown }): 'absent' | 'unknown' | null {
  const o = (error.details as { outcome?: unknown } | null | undefined)?.outcome;
  return o === 'absent' || o === 'unknown' ? o : null;
}

/** Sends an RPC reply as REST: `{ data }` with `okStatus`, or `{ error: { code, message } }` with the mapped status. */
export function sendReply<T>(res: Response, reply: Reply<T>, okStatus = 200): void {
  if (reply.ok) {
    res.status(okStatus).json({ data: reply.data });
    return;
  }
  const outcome = outcomeOfError(reply.error);
  res.status(statusForCode(reply.error.code)).json({
    error: { code: reply.error.code, message: reply.error.message, ...(outcome ? { outcome } : {}) },
  });
}
