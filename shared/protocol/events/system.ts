import { z } from 'zod';
import { defineEvent, request } from '../define.ts';
import { registerEvents } from '../catalog.ts';
import { rpcErrorSchema } from '../errors.ts';

/** One sample of a metric family, as prom-client's getMetricsAsJSON() gives it. */
const metricSample = z.strictObject({
  value: z.number(),
  labels: z.record(
    z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,40}$/),
    z.union([z.string().max(100), z.number()]),
  ),
  metricName: z.string().max(120).optional(),
});
/** A metric family of the agent: every name starts with ponio_agent_ (the panel adds a host label). */
const metricFamily = z.strictObject({
  name: z.string().regex(/^ponio_agent_[a-z0-9_]{1,80}$/),
  help: z.string().max(300),
  type: z.enum(['counter', 'gauge', 'histogram']),
  aggregator: z.string().max(20),
  values: z.array(metricSample).max(1_000),
});

export const systemEvents = {
  ping: defineEvent({
    module: 'system',
    mutation: false,
    timeoutMs: 5_000,
    summary: 'Checks that the agent answers.',
    request: request({}),
    reply: z.strictObject({ pong: z.literal(true), time: z.number(), agentVersion: z.string() }),
  }),
  'system info': defineEvent({
    module: 'system',
    mutation: false,
    timeoutMs: 10_000,
    summary: 'Hostname, OS, kernel, uptime, load, memory, disks and service states.',
    request: request({}),
    reply: z.strictObject({
      hostname: z.string(),
      os: z.strictObject({ id: z.string(), name: z.string(), version: z.string(), pretty: z.string() }),
      kernel: z.string(),
      arch: z.string(),
      uptimeSeconds: z.number(),
      load: z.tuple([z.number(), z.number(), z.number()]),
      cpus: z.number().int(),
      memory: z.strictObject({ totalBytes: z.number(), availableBytes: z.number(), freeBytes: z.number() }),
      disks: z.array(
        z.strictObject({
          mount: z.string(),
          filesystem: z.string(),
          type: z.string(),
          sizeBytes: z.number(),
          usedBytes: z.number(),
          availableBytes: z.number(),
        }),
      ),
      services: z.array(
        z.strictObject({ name: z.string(), state: z.enum(['running', 'stopped', 'missing', 'unknown']) }),
      ),
    }),
  }),
  'agent metrics': defineEvent({
    module: 'system',
    mutation: false,
    timeoutMs: 5_000,
    summary:
      "The agent's health (its readiness probes) and its metrics (lock wait, calls in flight, process), which the panel serves on /metrics with a host label.",
    request: request({}),
    reply: z.strictObject({
      health: z.strictObject({
        ready: z.boolean(),
        checks: z.array(z.strictObject({ name: z.string().max(40), ok: z.boolean() })).max(20),
      }),
      metrics: z.array(metricFamily).max(50),
    }),
  }),
  // The journal's word on an earlier mutation (docs/architecture.md, "Deadlines and unknown
  // outcomes"): the panel asks it to resolve a call whose outcome it could not tell.
  'call outcome': defineEvent({
    module: 'system',
    mutation: false,
    timeoutMs: 10_000,
    summary:
      'What became of an earlier mutation, by its requestId (running, done with its reply, absent, unknown).',
    request: request({ id: z.uuid() }),
    reply: z.discriminatedUnion('state', [
      z.strictObject({ state: z.literal('running'), event: z.string() }),
      z.strictObject({
        state: z.literal('done'),
        event: z.string(),
        reply: z.discriminatedUnion('ok', [
          z.strictObject({ ok: z.literal(true), data: z.unknown() }),
          z.strictObject({ ok: z.literal(false), error: rpcErrorSchema }),
        ]),
      }),
      z.strictObject({ state: z.literal('absent'), event: z.string() }),
      z.strictObject({ state: z.literal('unknown') }),
    ]),
  }),
  // --- trust (issue 3): renewal and revocation push over the existing mutual-TLS link. Handled
  // by agent/trust-handlers.ts (they need the agent's TLS state), registered under 'system'.
  'renew certificate': defineEvent({
    module: 'system',
    mutation: true,
    timeoutMs: 15_000,
    summary:
      'Generates a fresh key on the agent (kept pending, never sent) and returns a CSR for it; the panel signs it and sends it back with "install certificate".',
    request: request({}),
    reply: z.strictObject({ csrPem: z.string().max(10_000) }),
  }),
  'install certificate': defineEvent({
    module: 'system',
    mutation: true,
    timeoutMs: 15_000,
    summary:
      "Installs a renewed certificate for the pending key (checked against the pinned CA and this host's identity) and serves it without dropping connections.",
    request: request({
      certPem: z.string().min(1).max(20_000),
      caPem: z.string().min(1).max(20_000),
    }),
    reply: z.strictObject({ serial: z.string(), notAfter: z.number() }),
  }),
  'set revocations': defineEvent({
    module: 'system',
    mutation: true,
    timeoutMs: 10_000,
    summary:
      'Replaces the list of revoked panel-certificate serials; connections made with a revoked certificate are dropped.',
    request: request({
      serials: z
        .array(z.string().regex(/^[0-9A-Fa-f]{1,64}$/, 'must be a certificate serial in hex'))
        .max(10_000),
    }),
    reply: z.strictObject({ count: z.number().int() }),
  }),
} as const;

// The agent's router validates with what is registered: only the domains a process loaded.
registerEvents(systemEvents);
