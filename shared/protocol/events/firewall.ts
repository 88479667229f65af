import { z } from 'zod';
import { defineEvent, request } from '../define.ts';
import { registerEvents } from '../catalog.ts';
import { fromValidator } from '../../validate/zod.ts';
import { validateCidr, validatePortRange } from '../../validate/network.ts';
import { describeInput, hasControlChars, invalid, valid, type Validated } from '../../validate/result.ts';

export const FIREWALL_ACTIONS = ['allow', 'deny', 'reject'] as const;
export const FIREWALL_PROTOCOLS = ['tcp', 'udp', 'icmp', 'any'] as const;
export const FIREWALL_FAMILIES = ['ipv4', 'ipv6', 'both'] as const;
export type FirewallAction = (typeof FIREWALL_ACTIONS)[number];
export type FirewallProtocol = (typeof FIREWALL_PROTOCOLS)[number];
export type FirewallFamily = (typeof FIREWALL_FAMILIES)[number];

/** Limits that keep a rule set small enough to render, test and apply in one go. */
export const FIREWALL_LIMITS = { rules: 500, blocks: 5000, comment: 200 } as const;

/** Rule ids are made by the agent: `r` + 8 hex digits. */
export const RULE_ID_PATTERN = /^r[0-9a-f]{8}$/;

/** Free text shown next to a rule or block: printable, one line, no quotes or backslashes. */
export function validateFirewallComment(input: string): Validated<string> {
  const s = input.trim();
  if (s.length > FIREWALL_LIMITS.comment)
    return invalid(`The comment is longer than ${FIREWALL_LIMITS.comment} characters.`);
  if (hasControlChars(s) || /["'\\`]/.test(s))
    return invalid(
      `The comment ${describeInput(s)} contains a line break, a control character, a quote or a backslash.`,
    );
  return valid(s);
}

const commentField = fromValidator(z.string().max(FIREWALL_LIMITS.comment * 2), validateFirewallComment);

/** `any` (or absent) means every source; otherwise one address or CIDR range. */
const sourceField = fromValidator(z.string().max(64), (s) => (s === 'any' ? valid(null) : validateCidr(s)));
const addressField = fromValidator(z.string().max(64), validateCidr);
const portField = fromValidator(z.union([z.number(), z.string().max(11)]), validatePortRange);
const ruleIdField = z
  .string()
  .max(64)
  .regex(RULE_ID_PATTERN, 'is not a firewall rule id (ids look like r1a2b3c4d)');

export const firewallRuleSchema = z.strictObject({
  id: z.string(),
  action: z.enum(FIREWALL_ACTIONS),
  protocol: z.enum(FIREWALL_PROTOCOLS),
  family: z.enum(FIREWALL_FAMILIES),
  /** `80` or `8000-8100`; null = every port. */
  port: z.string().nullable(),
  /** Canonical address or CIDR; null = any source. */
  source: z.string().nullable(),
  comment: z.string(),
  createdAt: z.number(),
});
export type FirewallRule = z.infer<typeof firewallRuleSchema>;

export const blockSchema = z.strictObject({
  address: z.string(),
  /** Epoch ms; null = until unblocked. */
  expiresAt: z.number().nullable(),
  comment: z.string(),
  createdAt: z.number(),
});
export type FirewallBlock = z.infer<typeof blockSchema>;

export const pendingSchema = z
  .strictObject({
    /** Epoch ms at which the change reverts unless confirmed. */
    dueAt: z.number(),
    /**
     * Milliseconds left when the agent replied. Count down from this rather than from dueAt:
     * the panel's and the host's clocks may differ. (Optional: older agents do not send it.)
     */
    msLeft: z.number().int().nonnegative().optional(),
    reason: z.string(),
  })
  .nullable();
export type FirewallPending = z.infer<typeof pendingSchema>;

/** A rule of another tool (read-only), as iptables-save prints it. */
export const foreignRuleSchema = z.strictObject({
  family: z.enum(['ipv4', 'ipv6']),
  table: z.string(),
  line: z.string(),
});

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
      baseline: z.boolean(),
      pending: pendingSchema,
      foreign: z.array(foreignRuleSchema),
      /** Where the rules live: `host` or `netns:<name>` (sandbox). */
      scope: z.string(),
      confirmTimeoutSeconds: z.number(),
      /** False when PonIO's chains or the INPUT jump were changed outside PonIO (e.g. `iptables -F`). */
      inSync: z.boolean(),
    }),
  }),
  'add firewall rule': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Adds a rule to PonIO’s chain (at the end, or before the rule at `position`, 1-based).',
    request: request({
      action: z.enum(FIREWALL_ACTIONS),
      protocol: z.enum(FIREWALL_PROTOCOLS),
      family: z.enum(FIREWALL_FAMILIES).optional(),
      port: portField.optional(),
      source: sourceField.optional(),
      comment: commentField.optional(),
      position: z.number().int().min(1).max(FIREWALL_LIMITS.rules).optional(),
    }),
    reply: changeReply.extend({ rule: firewallRuleSchema }),
  }),
  'delete firewall rule': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Deletes one of PonIO’s rules.',
    request: request({ id: ruleIdField }),
    reply: changeReply,
  }),
  'block ip': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Blocks an address or range, optionally until an expiry.',
    request: request({
      address: addressField,
      expiresInSeconds: z.number().int().positive().max(31_536_000).optional(),
      comment: commentField.optional(),
    }),
    reply: changeReply.extend({ block: blockSchema }),
  }),
  'unblock ip': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Removes a block.',
    request: request({ address: addressField }),
    reply: changeReply,
  }),
  'apply firewall baseline': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary:
      'Applies the recommended baseline (loopback, established, ICMP, 80, 443, SSH, the agent port from the panel, reject the rest), in confirm mode.',
    request: request({}),
    reply: changeReply.extend({ rules: z.array(firewallRuleSchema) }),
  }),
  'remove firewall baseline': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Turns the baseline’s fixed parts (loopback, established, ICMP, reject the rest) off.',
    request: request({}),
    reply: changeReply,
  }),
  'reapply firewall': defineEvent({
    module: 'firewall',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Applies PonIO’s saved rule set again (after its chains were changed outside PonIO).',
    request: request({}),
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

// The agent's router validates with what is registered: only the domains a process loaded.
registerEvents(firewallEvents);
