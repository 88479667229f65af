import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  FIREWALL_ACTIONS,
  FIREWALL_FAMILIES,
  FIREWALL_LIMITS,
  FIREWALL_PROTOCOLS,
  RULE_ID_PATTERN,
  validateFirewallComment,
  type FirewallBlock,
  type FirewallRule,
} from '../../../shared/protocol/events/firewall.ts';
import { validateCidr, validatePortRange } from '../../../shared/validate/network.ts';
import { atomicWrite, readIfExists } from '../../os/files.ts';

/** Everything PonIO's firewall is, as data (design §5: state as data, never as a script). */
export interface FirewallState {
  /** The baseline's fixed parts: loopback, established/related, ICMP first; reject the rest last. */
  baseline: boolean;
  rules: FirewallRule[];
  blocks: FirewallBlock[];
}

export const emptyState = (): FirewallState => ({ baseline: false, rules: [], blocks: [] });

export const cloneState = (s: FirewallState): FirewallState => ({
  baseline: s.baseline,
  rules: s.rules.map((r) => ({ ...r })),
  blocks: s.blocks.map((b) => ({ ...b })),
});

// The state file is re-validated field by field when read: a tampered file can never smuggle
// anything into the iptables-restore input.
const check =
  <T>(fn: (v: T) => { ok: boolean; message?: string }) =>
  (v: T, ctx: z.RefinementCtx): void => {
    const r = fn(v);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message ?? 'invalid' });
  };
const canonicalCidr = (v: string): { ok: boolean; message?: string } => {
  const r = validateCidr(v);
  if (!r.ok) return r;
  return r.value.text === v ? { ok: true } : { ok: false, message: `${v} is not canonical` };
};
const canonicalPort = (v: string): { ok: boolean; message?: string } => {
  const r = validatePortRange(v);
  if (!r.ok) return r;
  return r.value.text === v ? { ok: true } : { ok: false, message: `${v} is not canonical` };
};
const commentCheck = (v: string): { ok: boolean; message?: string } => {
  const r = validateFirewallComment(v);
  return r.ok && r.value === v ? { ok: true } : { ok: false, message: 'bad comment' };
};

const storedRule = z.strictObject({
  id: z.string().regex(RULE_ID_PATTERN),
  action: z.enum(FIREWALL_ACTIONS),
  protocol: z.enum(FIREWALL_PROTOCOLS),
  family: z.enum(FIREWALL_FAMILIES),
  port: z.string().superRefine(check(canonicalPort)).nullable(),
  source: z.string().superRefine(check(canonicalCidr)).nullable(),
  comment: z.string().superRefine(check(commentCheck)),
  createdAt: z.number(),
});
const storedBlock = z.strictObject({
  address: z.string().superRefine(check(canonicalCidr)),
  expiresAt: z.number().nullable(),
  comment: z.string().superRefine(check(commentCheck)),
  createdAt: z.number(),
});
const stateFile = z.strictObject({
  format: z.literal(1),
  baseline: z.boolean(),
  rules: z.array(storedRule).max(FIREWALL_LIMITS.rules),
  blocks: z.array(storedBlock).max(FIREWALL_LIMITS.blocks),
});

export class FirewallStore {
  readonly file: string;
  /** Rendered iptables-restore input for the boot-time unit (deploy/systemd/ponio-firewall-restore.service). */
  readonly bootFiles: { ipv4: string; ipv6: string };

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'firewall.json');
    this.bootFiles = {
      ipv4: path.join(stateDir, 'firewall.rules.v4'),
      ipv6: path.join(stateDir, 'firewall.rules.v6'),
    };
  }

  /** The saved state; null when none was ever saved. Throws with a clear message when corrupt. */
  async load(): Promise<FirewallState | null> {
    const text = await readIfExists(this.file);
    if (text === null) return null;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new Error(`${this.file} is not valid JSON; fix or remove it`);
    }
    const parsed = stateFile.safeParse(raw);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new Error(`${this.file} is invalid (${i ? `${i.path.join('.')}: ${i.message}` : 'unknown'})`);
    }
    const { baseline, rules, blocks } = parsed.data;
    return { baseline, rules, blocks };
  }

  /** Removes boot-time files no saved state accounts for (written by a change killed before its state file). */
  async removeBootFiles(): Promise<void> {
    for (const f of [this.bootFiles.ipv4, this.bootFiles.ipv6]) await fsp.rm(f, { force: true });
  }

  /** Saves the state and the boot-time restore files, each atomically (0600: it is security data). */
  async save(state: FirewallState, boot: { ipv4: string; ipv6: string }): Promise<void> {
    const body = JSON.stringify({ format: 1, ...state }, null, 2) + '\n';
    await atomicWrite(this.bootFiles.ipv4, boot.ipv4, { mode: 0o600 });
    await atomicWrite(this.bootFiles.ipv6, boot.ipv6, { mode: 0o600 });
    await atomicWrite(this.file, body, { mode: 0o600 });
  }
}
