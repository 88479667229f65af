import { z } from 'zod';
import { defineEvent, request } from '../define.ts';

// First draft: the firewall module owns and tightens these.
export const firewallRuleSchema = z.strictObject({
  id: z.string(),
  action: z.enum(['allow', 'deny', 'reject']),
  protocol: z.enum(['tcp', 'udp', 'icmp', 'any']),
  port: z.string().nullable(),
  source: z.string().nullable(),
  comment: z.string(),
});
export const blockSchema = z.strictObject({
  address: z.string(),
  expiresAt: z.number().nullable(),
  comment: z.string(),
});
export const pendingSchema = z.strictObject({ dueAt: z.number(), reason: z.string() }).nullable();

const changeReply = z.strictObject({ pending: pendingSchema });

export const firewallEvents = {
  'list firewall rules': defineEvent({
    module: 'firewall',
    mutation: false,
    timeoutMs: 15_000,
    summary: 'PonIO’s rules and blocks, plus a read-only view of the other rules.',
    request: request({}),
    reply: z.strictObject({
      rules: z.array(firewallRuleSchema),
      blocks: z.array(blockSchema),
      pending: pendingSchema,
      foreign: z.array(z.string()),
    }),
  }),
  'add firewall rule': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Adds a rule to PonIO’s chain.',
    request: request({
      action: z.enum(['allow', 'deny', 'reject']),
      protocol: z.enum(['tcp', 'udp', 'icmp', 'any']),
      port: z.string().max(11).optional(),
      source: z.string().max(64).optional(),
      comment: z.string().max(200).optional(),
    }),
    reply: changeReply.extend({ rule: firewallRuleSchema }),
  }),
  'delete firewall rule': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Deletes one of PonIO’s rules.',
    request: request({ id: z.string().max(64) }),
    reply: changeReply,
  }),
  'block ip': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Blocks an address or range, optionally until an expiry.',
    request: request({
      address: z.string().max(64),
      expiresInSeconds: z.number().int().positive().max(31_536_000).optional(),
      comment: z.string().max(200).optional(),
    }),
    reply: changeReply.extend({ block: blockSchema }),
  }),
  'unblock ip': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Removes a block.',
    request: request({ address: z.string().max(64) }),
    reply: changeReply,
  }),
  'confirm firewall': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 15_000,
    summary: 'Keeps a change that was applied in confirm mode (otherwise it reverts).',
    request: request({}),
    reply: z.strictObject({ confirmed: z.boolean() }),
  }),
} as const;
