import { statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { HostMode } from '../../os/layout.ts';

const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const NETNS_DIR = '/run/netns';

export const firewallSettingsSchema = z.strictObject({
  /**
   * Where the firewall lives. `self`: the agent's own network namespace (the default in system
   * mode). A name: that namespace (`ip netns add NAME`). Sandbox mode never touches the machine's
   * own firewall: it needs a name, or `self` while the agent itself runs in a named namespace.
   */
  netns: z
    .union([z.literal('self'), z.string().regex(NETNS_NAME, 'must be a network namespace name')])
    .optional(),
  /** Seconds a risky change waits for `confirm firewall` before it reverts. */
  confirmTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
  /** SSH ports: a change that closes one of them is applied in confirm mode. */
  sshPorts: z.array(z.number().int().min(1).max(65535)).max(16).default([22]),
});
export type FirewallSettings = z.infer<typeof firewallSettingsSchema>;

export interface ResolvedFirewallSettings extends FirewallSettings {
  /** Namespace to run iptables in (`ip netns exec`), or undefined for the agent's own. */
  execNetns: string | undefined;
  /** Shown to admins: `host` or `netns:<name>`. */
  scope: string;
}

const inodeOf = (p: string): string | null => {
  try {
    const st = statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
};

/** The name of the named network namespace this process runs in, or null. */
export function ownNamespaceName(): string | null {
  const self = inodeOf('/proc/self/ns/net');
  if (self === null) return null;
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return null;
  }
  for (const n of names) if (inodeOf(path.join(NETNS_DIR, n)) === self) return n;
  return null;
}

/** Validates the module's settings for this host; an error is a sentence for an admin. */
export function resolveFirewallSettings(
  raw: unknown,
  mode: HostMode,
): { ok: true; value: ResolvedFirewallSettings } | { ok: false; reason: string } {
  const parsed = firewallSettingsSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    const where = i && i.path.length > 0 ? `${i.path.join('.')}: ` : '';
    const what = i?.code === 'unrecognized_keys' ? `unknown setting(s) ${i.keys.join(', ')}` : i?.message;
    return { ok: false, reason: `invalid firewall settings: ${where}${what ?? 'invalid'}` };
  }
  const s = parsed.data;
  const netns = s.netns ?? (mode === 'system' ? 'self' : undefined);
  if (netns === undefined)
    return {
      ok: false,
      reason:
        'In sandbox mode the firewall needs a network namespace of its own: set modules.firewall.netns to a namespace name (or "self" when the agent runs inside one).',
    };
  if (netns === 'self') {
    if (mode === 'system') return { ok: true, value: { ...s, execNetns: undefined, scope: 'host' } };
    const own = ownNamespaceName();
    if (own === null)
      return {
        ok: false,
        reason:
          'Sandbox mode refuses netns "self" here: the agent is not inside a named network namespace, so this would change the machine’s own firewall.',
      };
    return { ok: true, value: { ...s, execNetns: undefined, scope: `netns:${own}` } };
  }
  if (inodeOf(path.join(NETNS_DIR, netns)) === null)
    return {
      ok: false,
      reason: `The network namespace "${netns}" does not exist (create it with: ip netns add ${netns}).`,
    };
  return { ok: true, value: { ...s, execNetns: netns, scope: `netns:${netns}` } };
}
