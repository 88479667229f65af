import { describeInput, hasControlChars, invalid, valid, type Validated } from './result.ts';

/**
 * Host labels (`role=web`, `dc=ams`) and label selectors (`role=web,dc!=fra`). One source of
 * truth for the dashboard, the API, the CLI and the jobs engine's targets.
 */
export const MAX_LABELS_PER_HOST = 32;
export const LABEL_KEY_MAX = 63;
export const LABEL_VALUE_MAX = 63;

const KEY_RE = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;
const VALUE_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

export type Labels = Record<string, string>;

export function validateLabelKey(input: unknown): Validated<string> {
  if (typeof input !== 'string' || hasControlChars(input) || !KEY_RE.test(input))
    return invalid(
      `${describeInput(String(input))} is not a label key (lower-case letters, digits, dots, dashes and underscores, starting and ending with a letter or digit, at most ${LABEL_KEY_MAX}).`,
    );
  return valid(input);
}

export function validateLabelValue(input: unknown): Validated<string> {
  if (typeof input !== 'string' || hasControlChars(input) || !VALUE_RE.test(input))
    return invalid(
      `${describeInput(String(input))} is not a label value (letters, digits, dots, dashes and underscores, starting and ending with a letter or digit, at most ${LABEL_VALUE_MAX}).`,
    );
  return valid(input);
}

/** One `key=value` pair. */
export function parseLabel(input: unknown): Validated<{ key: string; value: string }> {
  if (typeof input !== 'string') return invalid('A label is written key=value, e.g. role=web.');
  const eq = input.indexOf('=');
  if (eq < 0) return invalid(`${describeInput(input)} is not a label: write key=value, e.g. role=web.`);
  const key = validateLabelKey(input.slice(0, eq).trim());
  if (!key.ok) return key;
  const value = validateLabelValue(input.slice(eq + 1).trim());
  if (!value.ok) return invalid(`${key.value}: ${value.message}`);
  return valid({ key: key.value, value: value.value });
}

/**
 * A whole label set: an object `{ key: value }`, or text with `key=value` pairs separated by
 * commas, spaces or new lines (the dashboard's field). Duplicate keys and more than
 * {@link MAX_LABELS_PER_HOST} labels are refused.
 */
export function validateLabels(input: unknown): Validated<Labels> {
  let pairs: unknown[];
  if (typeof input === 'string') {
    if (input.length > 4096) return invalid('The labels are too long.');
    pairs = input.split(/[\s,]+/).filter((s) => s.length > 0);
  } else if (input && typeof input === 'object' && !Array.isArray(input)) {
    pairs = Object.entries(input as Record<string, unknown>).map(([k, v]) =>
      typeof v === 'string' ? `${k}=${v}` : k,
    );
    for (const [k, v] of Object.entries(input as Record<string, unknown>))
      if (typeof v !== 'string') return invalid(`The value of label ${describeInput(k)} must be a string.`);
  } else return invalid('Labels are an object of key → value, or key=value pairs.');
  if (pairs.length > MAX_LABELS_PER_HOST)
    return invalid(`A host has at most ${MAX_LABELS_PER_HOST} labels (got ${pairs.length}).`);
  const out: Labels = {};
  for (const p of pairs) {
    const l = parseLabel(p);
    if (!l.ok) return l;
    if (Object.prototype.hasOwnProperty.call(out, l.value.key))
      return invalid(`The label ${l.value.key} is given twice.`);
    out[l.value.key] = l.value.value;
  }
  return valid(out);
}

/** One term of a selector: `key=value`, `key!=value`, `key` (has the label), `!key` (lacks it). */
export type SelectorTerm =
  { key: string; op: '=' | '!='; value: string } | { key: string; op: 'exists' | 'absent' };

export const MAX_SELECTOR_TERMS = 16;

/** Parses `role=web,dc!=fra,!canary`; an empty selector is refused (say "all hosts" instead). */
export function parseSelector(input: unknown): Validated<SelectorTerm[]> {
  if (typeof input !== 'string' || input.trim() === '')
    return invalid('A label selector is key=value terms separated by commas, e.g. role=web,dc!=fra.');
  if (input.length > 1024 || hasControlChars(input))
    return invalid('The label selector is too long or has control characters.');
  const parts = input.split(',').map((s) => s.trim());
  if (parts.length > MAX_SELECTOR_TERMS)
    return invalid(`A label selector has at most ${MAX_SELECTOR_TERMS} terms.`);
  const terms: SelectorTerm[] = [];
  for (const part of parts) {
    if (part === '') return invalid(`${describeInput(input)} has an empty term (two commas in a row?).`);
    const ne = part.indexOf('!=');
    const eq = part.indexOf('=');
    if (ne > 0 || eq > 0) {
      const at = ne > 0 ? ne : eq;
      const key = validateLabelKey(part.slice(0, at).trim());
      if (!key.ok) return key;
      const value = validateLabelValue(part.slice(at + (ne > 0 ? 2 : 1)).trim());
      if (!value.ok) return invalid(`${key.value}: ${value.message}`);
      terms.push({ key: key.value, op: ne > 0 ? '!=' : '=', value: value.value });
      continue;
    }
    const negated = part.startsWith('!');
    const key = validateLabelKey(negated ? part.slice(1).trim() : part);
    if (!key.ok)
      return invalid(`${describeInput(part)} is not a selector term (key=value, key!=value, key or !key).`);
    terms.push({ key: key.value, op: negated ? 'absent' : 'exists' });
  }
  return valid(terms);
}

/** Whether a host's labels satisfy every term (a host without the key fails `=` and passes `!=`). */
export function selectorMatches(terms: readonly SelectorTerm[], labels: Readonly<Labels>): boolean {
  return terms.every((t) => {
    const has = Object.prototype.hasOwnProperty.call(labels, t.key);
    switch (t.op) {
      case '=':
        return has && labels[t.key] === t.value;
      case '!=':
        return !has || labels[t.key] !== t.value;
      case 'exists':
        return has;
      case 'absent':
        return !has;
    }
  });
}

/** `role=web, dc=ams` in key order (display and CLI output). */
export const formatLabels = (labels: Readonly<Labels>): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join(', ');
