import { rpcEvents, isEventName } from './index.ts';
import { redactFields } from './redact-fields.ts';

/** Copies params with secret fields replaced by "[redacted]" (for logs and the audit log). */
export function redactParams(event: string, params: unknown): unknown {
  return redactFields(params, isEventName(event) ? rpcEvents[event].secrets : undefined);
}
