import { domainToASCII, domainToUnicode } from 'node:url';
import { isIP } from 'node:net';
import { describeInput, hasControlChars, invalid, valid, type Validated } from './result.ts';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const MAX_INPUT = 300;

/**
 * Validates a website domain name and returns its ASCII (punycode) form, lower-cased.
 * Refuses anything that is not a plain DNS host name: `..`, leading or trailing dot or dash,
 * shell or path characters, whitespace, control characters, IP addresses, over-long labels,
 * single-label names and all-numeric top-level labels.
 */
export function validateDomain(input: unknown): Validated<string> {
  if (typeof input !== 'string') return invalid('A domain name must be a string.');
  if (input.length === 0) return invalid('The domain name is empty.');
  if (input.length > MAX_INPUT) return invalid('The domain name is too long (at most 253 characters).');
  if (hasControlChars(input)) return invalid('The domain name contains control characters or line breaks.');
  if (/\s/.test(input)) return invalid(`The domain name ${describeInput(input)} contains white space.`);
  if (isIP(input) !== 0 || /^\[.*\]$/.test(input))
    return invalid(`${describeInput(input)} is an IP address; a website needs a domain name.`);
  if (input.startsWith('.') || input.endsWith('.'))
    return invalid(`The domain name ${describeInput(input)} starts or ends with a dot.`);
  if (input.includes('..'))
    return invalid(`The domain name ${describeInput(input)} contains an empty label ("..").`);
  // Only letters (any script, for IDNs), digits, dots and dashes may come in; punycode does the rest.
  if (!/^[\p{L}\p{M}\p{N}.-]+$/u.test(input))
    return invalid(
      `The domain name ${describeInput(input)} contains characters that are not allowed (only letters, digits, dots and dashes).`,
    );
  const ascii = domainToASCII(input.normalize('NFC')).toLowerCase();
  if (ascii === '') return invalid(`${describeInput(input)} is not a valid internationalised domain name.`);
  if (ascii.length > 253) return invalid('The domain name is too long (at most 253 characters).');
  const labels = ascii.split('.');
  if (labels.length < 2)
    return invalid(`${describeInput(input)} needs at least two labels, like example.com.`);
  for (const label of labels) {
    if (label.length > 63) return invalid(`The label "${label.slice(0, 20)}…" is longer than 63 characters.`);
    if (!LABEL.test(label))
      return invalid(
        `The label "${label}" of ${describeInput(input)} is not valid (it may not start or end with a dash).`,
      );
  }
  const tld = labels[labels.length - 1] ?? '';
  if (/^[0-9]+$/.test(tld))
    return invalid(`The top-level label of ${describeInput(input)} cannot be all digits.`);
  return valid(ascii);
}

/** The human form of an ASCII domain (for display). */
export const domainForDisplay = (ascii: string): string => domainToUnicode(ascii) || ascii;
