import type { FirewallRule } from '../../../shared/protocol/events/firewall.ts';
import {
  addressToBigInt,
  bigIntToAddress,
  cidrBounds,
  validateCidr,
  validateIp,
  validatePortRange,
  type Cidr,
} from '../../../shared/validate/network.ts';
import { activeBlocks, familyOf, ruleApplies, type Family } from './render.ts';
import type { FirewallState } from './state.ts';

/**
 * The lock-out guard: a pure model of how PonIO's chains treat a NEW inbound TCP connection.
 * Only PonIO's chains are modelled; `pass` means the packet goes back to INPUT (other tools' rules
 * and the policy decide, which PonIO does not change).
 */
export type Verdict = 'accept' | 'drop' | 'reject' | 'pass';

const VERDICT: Record<FirewallRule['action'], Verdict> = { allow: 'accept', deny: 'drop', reject: 'reject' };
export const isBlocked = (v: Verdict): boolean => v === 'drop' || v === 'reject';

interface Prepared {
  family: Family;
  /** Block ranges of this family, by prefix length → set of network addresses (fast membership). */
  blocks: Map<number, Set<bigint>>;
  /** Rules of this family that match TCP to the port, in order, with their parsed source. */
  rules: { source: ParsedRange | null; verdict: Verdict }[];
  baseline: boolean;
}

const bitsOf = (f: Family): number => (f === 'ipv4' ? 32 : 128);

interface ParsedRange {
  cidr: Cidr;
  family: Family;
  first: bigint;
  last: bigint;
}
/** Parsed ranges by canonical text (parsing with bigints dominates the cost for big block lists). */
const rangeCache = new Map<string, ParsedRange | null>();
function parseRange(text: string): ParsedRange | null {
  let r = rangeCache.get(text);
  if (r !== undefined) return r;
  const c = validateCidr(text);
  r = c.ok ? { cidr: c.value, family: familyOf(c.value.text), ...cidrBounds(c.value) } : null;
  if (rangeCache.size > 50_000) rangeCache.clear();
  rangeCache.set(text, r);
  return r;
}

function prepare(state: FirewallState, family: Family, port: number, now: number): Prepared {
  const blocks = new Map<number, Set<bigint>>();
  for (const b of activeBlocks(state, now)) {
    const c = parseRange(b.address);
    if (!c || c.family !== family) continue;
    let set = blocks.get(c.cidr.prefix);
    if (!set) blocks.set(c.cidr.prefix, (set = new Set()));
    set.add(c.first);
  }
  const rules: Prepared['rules'] = [];
  for (const r of state.rules) {
    if (!ruleApplies(r, family)) continue;
    if (r.protocol !== 'tcp' && r.protocol !== 'any') continue;
    if (r.port !== null) {
      const p = validatePortRange(r.port);
      if (!p.ok || port < p.value.from || port > p.value.to) continue;
    }
    let source: ParsedRange | null = null;
    if (r.source !== null) {
      source = parseRange(r.source);
      if (!source || source.family !== family) continue;
    }
    rules.push({ source, verdict: VERDICT[r.action] });
  }
  return { family, blocks, rules, baseline: state.baseline };
}

function verdictOf(p: Prepared, addr: bigint): Verdict {
  const bits = bitsOf(p.family);
  for (const [prefix, nets] of p.blocks) {
    const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
    if (nets.has(addr & mask)) return 'drop';
  }
  for (const r of p.rules) {
    if (r.source === null || (addr >= r.source.first && addr <= r.source.last)) return r.verdict;
  }
  // Baseline: loopback, established and ICMP never match a NEW TCP packet from outside.
  return p.baseline ? 'reject' : 'pass';
}

/** What PonIO's chains do with a new TCP connection from `source` to `port`. */
export function verdictFor(state: FirewallState, source: string, port: number, now: number): Verdict {
  const ip = validateIp(source);
  if (!ip.ok) return 'pass';
  const family: Family = ip.value.version === 4 ? 'ipv4' : 'ipv6';
  return verdictOf(prepare(state, family, port, now), addressToBigInt(ip.value.address, ip.value.version));
}

/**
 * Source addresses that represent every distinct case: the verdict only changes at the edges of
 * the ranges named by rules and blocks, so the edges and their neighbours cover every cell.
 */
function samplePoints(states: FirewallState[], family: Family): bigint[] {
  const max = (1n << BigInt(bitsOf(family))) - 1n;
  const pts = new Set<bigint>([0n, max, 1n, max - 1n]);
  const add = (text: string): void => {
    const c = parseRange(text);
    if (!c || c.family !== family) return;
    const { first, last } = c;
    for (const v of [first, last, first - 1n, last + 1n]) if (v >= 0n && v <= max) pts.add(v);
  };
  for (const s of states) {
    for (const r of s.rules) if (r.source !== null) add(r.source);
    for (const b of s.blocks) add(b.address);
  }
  return [...pts];
}

/**
 * Does going from `before` to `after` close one of `ports` (TCP) for some source that could reach
 * it before? Returns a sentence naming the first such case, or null. Exact over every source.
 */
export function lostAccess(
  before: FirewallState,
  after: FirewallState,
  ports: readonly number[],
  now: number,
): string | null {
  for (const family of ['ipv4', 'ipv6'] as const) {
    const points = samplePoints([before, after], family);
    for (const port of ports) {
      const b = prepare(before, family, port, now);
      const a = prepare(after, family, port, now);
      for (const pt of points) {
        if (!isBlocked(verdictOf(b, pt)) && isBlocked(verdictOf(a, pt))) {
          const who = bigIntToAddress(pt, family === 'ipv4' ? 4 : 6);
          return `it closes TCP port ${port} for ${who} (and maybe others)`;
        }
      }
    }
  }
  return null;
}

/**
 * The verdict on the replies of a connection the agent opened itself (reverse mode: the agent
 * dials the panel, replies arrive from `source` on the agent's local port `port`). With the
 * baseline, PONIO-INPUT accepts RELATED,ESTABLISHED before any rule, so only the block list can
 * cut it; without, the rules decide as for any packet.
 */
export function outboundVerdict(state: FirewallState, source: string, port: number, now: number): Verdict {
  if (!state.baseline) return verdictFor(state, source, port, now);
  return verdictFor({ ...state, rules: [], baseline: false }, source, port, now);
}

/**
 * Local ports a new outbound connection may get (the kernel's ephemeral range) that stand for
 * every case of `state`: the range ends and the rule port ranges' edges inside it.
 */
export function ephemeralSamples(state: FirewallState, range: { from: number; to: number }): number[] {
  const pts = new Set<number>([range.from, range.to]);
  for (const r of state.rules) {
    if (r.port === null) continue;
    const p = validatePortRange(r.port);
    if (!p.ok) continue;
    for (const v of [p.value.from - 1, p.value.from, p.value.to, p.value.to + 1])
      if (v >= range.from && v <= range.to) pts.add(v);
  }
  return [...pts];
}
