import { rpcEvents, isEventName } from './index.ts';
import { redactFields } from './redact-fields.ts';

/** Copies params with secret fields replaced by "[redacted]" (for logs and the audit log). */
export function redactParams(event: string, params: unknown): unknown {
  return redactFields(params, isEventName(event) ? rpcEvents[event].secrets : undefined);
}

/**
 * Params as the audit log keeps them: secrets redacted; for a request the contract refused, only
 * the keys the request schema knows (an unknown field such as `pwd` may hold anything).
 */
export function auditParams(event: string, params: unknown, accepted: boolean): unknown {
  if (accepted || !isEventName(event)) return redactParams(event, accepted ? params : null);
  if (!params || typeof params !== 'object' || Array.isArray(params)) return null;
  const schema: unknown = rpcEvents[event].request;
  const shape = (schema as { shape?: Record<string, unknown> }).shape ?? {};
  const known = Object.fromEntries(Object.entries(params).filter(([k]) => Object.hasOwn(shape, k)));
  return redactParams(event, known);
}
