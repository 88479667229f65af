import { isIP } from 'node:net';
import { describeInput, hasControlChars, invalid, valid, type Validated } from './result.ts';

export type IpVersion = 4 | 6;
export interface Cidr {
  address: string;
  prefix: number;
  version: IpVersion;
  /** Canonical text, e.g. `10.0.0.0/8` or `2001:db8::/32`. */
  text: string;
}

/** Validates a single IP address (v4 or v6) and returns it canonical. */
export function validateIp(input: unknown): Validated<{ address: string; version: IpVersion }> {
  if (typeof input !== 'string' || input.length === 0) return invalid('An IP address is required.');
  if (input.length > 64 || hasControlChars(input))
    return invalid(`${describeInput(input)} is not an IP address.`);
  if (input.includes('%'))
    return invalid(`${describeInput(input)}: zone indexes (%…) are not allowed in an IP address.`);
  const v = isIP(input);
  if (v === 0) return invalid(`${describeInput(input)} is not an IP address.`);
  return valid({ address: v === 6 ? normalise(input.toLowerCase(), 6) : input, version: v as IpVersion });
}

/** Validates `ADDR` or `ADDR/PREFIX`; the address part must not have host bits set beyond the prefix. */
export function validateCidr(input: unknown): Validated<Cidr> {
  if (typeof input !== 'string' || input.length === 0)
    return invalid('An address or CIDR range is required.');
  if (input.length > 64 || hasControlChars(input) || /\s/.test(input))
    return invalid(`${describeInput(input)} is not an IP address or CIDR range.`);
  const [addr, prefixText, extra] = input.split('/');
  if (extra !== undefined || addr === undefined)
    return invalid(`${describeInput(input)} is not a CIDR range.`);
  const ip = validateIp(addr);
  if (!ip.ok) return invalid(`${describeInput(input)} is not an IP address or CIDR range.`);
  const max = ip.value.version === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^[0-9]{1,3}$/.test(prefixText))
      return invalid(`The prefix length in ${describeInput(input)} is not a number.`);
    prefix = Number(prefixText);
    if (prefix > max)
      return invalid(`The prefix length in ${describeInput(input)} must be between 0 and ${max}.`);
  }
  const network = maskAddress(ip.value.address, ip.value.version, prefix);
  if (network !== normalise(ip.value.address, ip.value.version))
    return invalid(`${describeInput(input)} has host bits set; did you mean ${network}/${prefix}?`);
  return valid({
    address: network,
    prefix,
    version: ip.value.version,
    text: prefix === max ? network : `${network}/${prefix}`,
  });
}

/** Validates a TCP/UDP port number (1–65535). */
export function validatePort(input: unknown): Validated<number> {
  const n = typeof input === 'string' && /^[0-9]{1,5}$/.test(input) ? Number(input) : input;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535)
    return invalid(`${describeInput(String(input))} is not a port number (1–65535).`);
  return valid(n);
}

export interface PortRange {
  from: number;
  to: number;
  /** Canonical text: `80` or `8000-8100`. */
  text: string;
}

/**
 * Validates a port or an inclusive range: a number, `"80"`, `"8000-8100"` or `"8000:8100"`.
 * Both ends must be 1–65535 and the range must not be reversed.
 */
export function validatePortRange(input: unknown): Validated<PortRange> {
  if (typeof input === 'number') {
    const p = validatePort(input);
    return p.ok ? valid({ from: p.value, to: p.value, text: String(p.value) }) : p;
  }
  if (typeof input !== 'string' || input.length === 0) return invalid('A port or port range is required.');
  const m = /^([0-9]{1,5})(?:[-:]([0-9]{1,5}))?$/.exec(input);
  if (!m?.[1])
    return invalid(`${describeInput(input)} is not a port (1–65535) or a range such as 8000-8100.`);
  const from = validatePort(m[1]);
  if (!from.ok) return from;
  if (m[2] === undefined) return valid({ from: from.value, to: from.value, text: String(from.value) });
  const to = validatePort(m[2]);
  if (!to.ok) return to;
  if (to.value < from.value)
    return invalid(`The port range ${describeInput(input)} is reversed; write the lower port first.`);
  const text = from.value === to.value ? String(from.value) : `${from.value}-${to.value}`;
  return valid({ from: from.value, to: to.value, text });
}

/** The first and last address of a range, as numbers (for interval arithmetic). */
export function cidrBounds(cidr: Cidr): { first: bigint; last: bigint } {
  const bits = cidr.version === 4 ? 32 : 128;
  const first = addressToBigInt(cidr.address, cidr.version);
  const size = 1n << BigInt(bits - cidr.prefix);
  return { first, last: first + size - 1n };
}

// --- address arithmetic -------------------------------------------------------------------

export function addressToBigInt(address: string, version: IpVersion): bigint {
  if (version === 4) return address.split('.').reduce((acc, part) => (acc << 8n) + BigInt(Number(part)), 0n);
  const groups = expandV6(address);
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n);
}

export function bigIntToAddress(value: bigint, version: IpVersion): string {
  if (version === 4) {
    return [24n, 16n, 8n, 0n].map((s) => ((value >> s) & 255n).toString()).join('.');
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return compressV6(groups);
}

/** True when `address` lies inside `cidr`. */
export function cidrContains(cidr: Cidr, address: string): boolean {
  const ip = validateIp(address);
  if (!ip.ok || ip.value.version !== cidr.version) return false;
  return maskAddress(ip.value.address, ip.value.version, cidr.prefix) === cidr.address;
}

function maskAddress(address: string, version: IpVersion, prefix: number): string {
  const bits = version === 4 ? 32 : 128;
  const value = addressToBigInt(address, version);
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  return bigIntToAddress(value & mask, version);
}

function normalise(address: string, version: IpVersion): string {
  return bigIntToAddress(addressToBigInt(address, version), version);
}

function expandV6(address: string): string[] {
  let a = address;
  // Embedded IPv4 tail (::ffff:1.2.3.4)
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4?.[1]) {
    const n = addressToBigInt(v4[1], 4);
    a = a.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = a.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t];
}

function compressV6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}
