import { z } from 'zod';
import { defineEvent, request } from '../define.ts';

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
} as const;
