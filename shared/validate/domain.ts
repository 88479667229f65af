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
  const mixed = mixedScriptLabel(domainToUnicode(ascii));
  if (mixed)
    return invalid(
      `The label "${mixed.label}" of ${describeInput(input)} mixes ${mixed.scripts.join(' and ')} letters, the mark of a look-alike name; use one script per label.`,
    );
  const tld = labels[labels.length - 1] ?? '';
  if (/^[0-9]+$/.test(tld))
    return invalid(`The top-level label of ${describeInput(input)} cannot be all digits.`);
  return valid(ascii);
}

/**
 * Scripts a label's letters are checked against (homograph attacks mix look-alike letters of
 * several scripts, e.g. a Cyrillic "а" in "pаypal"). Letters of any other script count as one
 * script of their own.
 */
const SCRIPTS: readonly [string, RegExp][] = [
  ['Latin', /\p{Script=Latin}/u],
  ['Cyrillic', /\p{Script=Cyrillic}/u],
  ['Greek', /\p{Script=Greek}/u],
  ['Armenian', /\p{Script=Armenian}/u],
  ['Georgian', /\p{Script=Georgian}/u],
  ['Hebrew', /\p{Script=Hebrew}/u],
  ['Arabic', /\p{Script=Arabic}/u],
  ['Han', /\p{Script=Han}/u],
  ['Hiragana', /\p{Script=Hiragana}/u],
  ['Katakana', /\p{Script=Katakana}/u],
  ['Hangul', /\p{Script=Hangul}/u],
  ['Bopomofo', /\p{Script=Bopomofo}/u],
  ['Thai', /\p{Script=Thai}/u],
  ['Devanagari', /\p{Script=Devanagari}/u],
];
/** Mixes that are one writing system (as browsers' IDN display policies allow). */
const ALLOWED_MIXES: readonly (readonly string[])[] = [
  ['Latin', 'Han', 'Hiragana', 'Katakana'],
  ['Latin', 'Han', 'Hangul'],
  ['Latin', 'Han', 'Bopomofo'],
];

/** The first label whose letters mix scripts outside the allowed mixes, with those scripts. */
function mixedScriptLabel(unicode: string): { label: string; scripts: string[] } | null {
  for (const label of unicode.split('.')) {
    const scripts = new Set<string>();
    for (const ch of label) {
      if (!/\p{L}/u.test(ch)) continue;
      scripts.add(SCRIPTS.find(([, re]) => re.test(ch))?.[0] ?? 'other');
    }
    if (scripts.size < 2) continue;
    const list = [...scripts];
    if (ALLOWED_MIXES.some((mix) => list.every((x) => mix.includes(x)))) continue;
    return { label, scripts: list };
  }
  return null;
}

/** The human form of an ASCII domain (for display). */
export const domainForDisplay = (ascii: string): string => domainToUnicode(ascii) || ascii;
