import type { Response } from 'express';
import type { Reply } from '../../shared/protocol/index.ts';
import { statusForCode } from '../http/errors.ts';

/** Sends an RPC reply as REST: `{ data }` with `okStatus`, or `{ error: { code, message } }` with the mapped status. */
export function sendReply<T>(res: Response, reply: Reply<T>, okStatus = 200): void {
  if (reply.ok) {
    res.status(okStatus).json({ data: reply.data });
    return;
  }
  res
    .status(statusForCode(reply.error.code))
    .json({ error: { code: reply.error.code, message: reply.error.message } });
}
