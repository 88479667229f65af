import { z } from 'zod';
import { defineEvent, request } from '../define.ts';
import { registerEvents } from '../catalog.ts';

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
