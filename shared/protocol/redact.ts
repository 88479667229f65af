import { rpcEvents, isEventName } from './index.ts';

const ALWAYS_SECRET = /pass(word)?|secret|token|key/i;

/** Copies params with secret fields replaced by "[redacted]" (for logs and the audit log). */
export function redactParams(event: string, params: unknown): unknown {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return params;
  const secrets = new Set<string>(isEventName(event) ? (rpcEvents[event].secrets ?? []) : []);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
    out[k] = secrets.has(k) || ALWAYS_SECRET.test(k) ? '[redacted]' : v;
  }
  return out;
}
