import { isIP } from 'node:net';
import { hasControlChars, describeInput } from '../../shared/validate/result.ts';

/** A panel-side refusal of the host lifecycle (add, enroll, token, remove), with its HTTP status. */
export class EnrollmentError extends Error {
  constructor(
    readonly status: number,
    readonly code:
      'invalid-argument' | 'not-found' | 'already-exists' | 'failed-precondition' | 'permission-denied',
    message: string,
  ) {
    super(message);
    this.name = 'EnrollmentError';
  }
}

const bad = (message: string): EnrollmentError => new EnrollmentError(400, 'invalid-argument', message);

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const DEFAULT_AGENT_PORT = 7443;

/** A host's display name: letters, digits and dashes (it also becomes its id, in lower case). */
export function parseHostName(input: unknown): string {
  if (typeof input !== 'string' || input.length === 0) throw bad('A host needs a name, e.g. web1.');
  if (input.length > 63) throw bad('The host name is too long (at most 63 characters).');
  if (hasControlChars(input)) throw bad('The host name contains control characters or line breaks.');
  if (!NAME.test(input))
    throw bad(
      `The host name ${describeInput(input)} may only contain letters, digits and dashes (not at the start or end).`,
    );
  return input;
}

/** `HOST[:PORT]`, `[IPv6]:PORT` or a bare IPv6 address → address + port (default 7443). */
export function parseHostAddress(input: unknown, portInput?: unknown): { address: string; port: number } {
  if (typeof input !== 'string' || input.length === 0)
    throw bad('A host needs an address: a DNS name or IP the panel can reach, e.g. web1.example.com:7443.');
  if (input.length > 260) throw bad('The address is too long.');
  if (hasControlChars(input) || /\s/.test(input))
    throw bad('The address contains white space, control characters or line breaks.');
  let host = input;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(input);
  if (v6) {
    host = v6[1] ?? '';
    portText = v6[2];
    if (isIP(host) !== 6) throw bad(`${describeInput(input)}: the part in brackets is not an IPv6 address.`);
  } else if (isIP(input) === 6) {
    host = input;
  } else {
    const i = input.lastIndexOf(':');
    if (i >= 0) {
      host = input.slice(0, i);
      portText = input.slice(i + 1);
      if (!/^\d{1,5}$/.test(portText)) throw bad(`${describeInput(input)}: the port must be a number.`);
    }
  }
  let port = DEFAULT_AGENT_PORT;
  if (portText !== undefined) port = Number(portText);
  if (portInput !== undefined && portInput !== null && portInput !== '') {
    const p =
      typeof portInput === 'number' ? portInput : typeof portInput === 'string' ? Number(portInput) : NaN;
    if (portText !== undefined && p !== port)
      throw bad('The port is given twice (in the address and as port) with different values.');
    port = p;
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad('The agent port must be 1–65535.');
  if (isIP(host) === 0) {
    const h = host.toLowerCase();
    if (h.length > 253 || h.length === 0) throw bad(`${describeInput(input)} is not a valid host name.`);
    const labels = h.split('.');
    if (!labels.every((l) => DNS_LABEL.test(l)))
      throw bad(
        `${describeInput(input)} is not an IP address or a DNS name (letters, digits, dashes and dots only).`,
      );
    if (/^[0-9.]+$/.test(h)) throw bad(`${describeInput(input)} is not a valid IPv4 address.`);
    host = h;
  }
  return { address: host, port };
}

/** Who dials: `forward` (default, the panel reaches the agent) or `reverse` (the agent dials out). */
export function parseHostMode(input: unknown): 'forward' | 'reverse' {
  if (input === undefined || input === null || input === '') return 'forward';
  if (input === 'forward' || input === 'reverse') return input;
  throw bad(
    `The mode ${describeInput(typeof input === 'string' ? input : (JSON.stringify(input) ?? typeof input))} is not forward (the panel connects to the host) or reverse (the host connects to the panel).`,
  );
}
