import type { FirewallRule } from '../../../shared/protocol/events/firewall.ts';
import type { FirewallState } from './state.ts';

export type Family = 'ipv4' | 'ipv6';
export const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

/** PonIO's chains: INPUT jumps to PONIO-INPUT, whose first rule jumps to the block list. */
export const CHAIN = 'PONIO-INPUT';
export const BLOCK_CHAIN = 'PONIO-BLOCK';
export const JUMP_RULE = `-A INPUT -j ${CHAIN}`;

const TARGET: Record<FirewallRule['action'], string> = { allow: 'ACCEPT', deny: 'DROP', reject: 'REJECT' };

/** The family of a canonical address or CIDR. */
export const familyOf = (cidr: string): Family => (cidr.includes(':') ? 'ipv6' : 'ipv4');

/** Blocks still in force at `now` (an expired block is never rendered). */
export const activeBlocks = (state: FirewallState, now: number): FirewallState['blocks'] =>
  state.blocks.filter((b) => b.expiresAt === null || b.expiresAt > now);

export const ruleApplies = (rule: FirewallRule, family: Family): boolean =>
  rule.family === 'both' || rule.family === family;

/** One rule as iptables arguments (without the leading `-A CHAIN`). */
export function ruleArgs(rule: FirewallRule, family: Family): string[] {
  const a: string[] = [];
  if (rule.source !== null) a.push('-s', rule.source);
  if (rule.protocol === 'icmp') a.push('-p', family === 'ipv4' ? 'icmp' : 'ipv6-icmp');
  else if (rule.protocol !== 'any') a.push('-p', rule.protocol);
  if (rule.port !== null) a.push('--dport', rule.port.replace('-', ':'));
  a.push('-m', 'comment', '--comment', `ponio:${rule.id}`, '-j', TARGET[rule.action]);
  return a;
}

export interface RenderOptions {
  /** Add `-I INPUT 1 -j PONIO-INPUT` (when INPUT does not jump to PonIO's chain yet). */
  insertJump: boolean;
  now: number;
}

/**
 * Renders PonIO's chains for one family as `iptables-restore --noflush` input. Declaring a chain
 * flushes it, so the whole of PonIO's rule set is replaced in one transaction, and no other chain
 * is touched (except one jump inserted into INPUT when missing).
 */
export function renderRestore(state: FirewallState, family: Family, opts: RenderOptions): string {
  const lines = ['*filter', `:${CHAIN} - [0:0]`, `:${BLOCK_CHAIN} - [0:0]`];
  if (opts.insertJump) lines.push(`-I INPUT 1 -j ${CHAIN}`);
  lines.push(`-A ${CHAIN} -j ${BLOCK_CHAIN}`);
  for (const b of activeBlocks(state, opts.now)) {
    if (familyOf(b.address) !== family) continue;
    lines.push(`-A ${BLOCK_CHAIN} -s ${b.address} -m comment --comment ponio:block -j DROP`);
  }
  if (state.baseline) {
    const tag = '-m comment --comment ponio:baseline';
    lines.push(`-A ${CHAIN} -i lo ${tag} -j ACCEPT`);
    lines.push(`-A ${CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`);
    lines.push(`-A ${CHAIN} -p ${family === 'ipv4' ? 'icmp' : 'ipv6-icmp'} ${tag} -j ACCEPT`);
  }
  for (const r of state.rules) {
    if (!ruleApplies(r, family)) continue;
    if (r.source !== null && familyOf(r.source) !== family) continue;
    lines.push([`-A`, CHAIN, ...ruleArgs(r, family)].join(' '));
  }
  if (state.baseline) lines.push(`-A ${CHAIN} -m comment --comment ponio:baseline -j REJECT`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The number of rules `renderRestore` puts into PonIO's two chains (used to verify an apply). */
export function countRendered(text: string): number {
  return text.split('\n').filter((l) => l.startsWith(`-A ${CHAIN} `) || l.startsWith(`-A ${BLOCK_CHAIN} `))
    .length;
}

/** Parses `iptables-save` output: PonIO's own rule lines, whether INPUT jumps to PONIO-INPUT, the rest. */
export function parseSave(text: string): {
  own: string[];
  hasJump: boolean;
  foreign: { table: string; line: string }[];
} {
  const own: string[] = [];
  const foreign: { table: string; line: string }[] = [];
  let table = '';
  let hasJump = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1);
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    if (table === 'filter' && line === JUMP_RULE) {
      hasJump = true;
      continue;
    }
    if (table === 'filter' && (line.startsWith(`-A ${CHAIN} `) || line.startsWith(`-A ${BLOCK_CHAIN} `))) {
      own.push(line);
      continue;
    }
    foreign.push({ table, line });
  }
  return { own, hasJump, foreign };
}
