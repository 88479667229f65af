import { whichBinary, type Binary } from '../../os/exec.ts';
import type { HostMode } from '../../os/layout.ts';
import { available, unavailable, type ModuleAvailability } from '../types.ts';
import { resolveFirewallSettings } from './settings.ts';

export const FIREWALL_BINARIES: Binary[] = [
  'iptables-save',
  'iptables-restore',
  'ip6tables-save',
  'ip6tables-restore',
];

/** The firewall module's availability: its settings for this host, then the iptables programs. */
export function firewallAvailability(
  settings: ReturnType<typeof resolveFirewallSettings>,
  missing: readonly Binary[],
): ModuleAvailability {
  if (!settings.ok) return unavailable(settings.reason);
  if (missing.length > 0)
    return unavailable(`${missing.join(', ')} not installed (apt-get install iptables).`);
  return available();
}

/** The same, computed without loading the module (agent/main.ts): null when available. */
export function probeFirewall(mode: HostMode, settings: unknown): ModuleAvailability | null {
  const a = firewallAvailability(
    resolveFirewallSettings(settings, mode),
    FIREWALL_BINARIES.filter((b) => whichBinary(b) === null),
  );
  return a.available ? null : a;
}
