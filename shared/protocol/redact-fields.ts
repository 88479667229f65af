const ALWAYS_SECRET = /pass(word)?|secret|token|key/i;

/**
 * Copies params with the given secret fields, and any field whose name looks like a secret,
 * replaced by "[redacted]" (for logs and the audit log).
 */
export function redactFields(params: unknown, secrets: readonly string[] = []): unknown {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return params;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
    out[k] = secrets.includes(k) || ALWAYS_SECRET.test(k) ? '[redacted]' : v;
  }
  return out;
}
