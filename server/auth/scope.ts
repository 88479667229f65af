import {
  parseSelector,
  selectorMatches,
  type Labels,
  type SelectorTerm,
} from '../../shared/validate/labels.ts';
import { ROLES, minRole, type Role } from './roles.ts';

/** A role on all hosts (`selector` null) or on the hosts a label selector matches (`role=web`). */
export interface Grant {
  role: Role;
  selector: string | null;
}

interface CompiledGrant {
  role: Role;
  terms: readonly SelectorTerm[] | null;
}

/**
 * What an actor may do on each host. Each layer is a set of grants (a union); layers are
 * intersected: a host's role is, per layer, the highest role of a grant that matches the host,
 * then the lowest of those across layers, never above `ceiling` (the actor's role). No layer
 * means the whole fleet at `ceiling`. A user's grants are one layer; a token adds its own
 * selector as a second one, so a token is never wider than its creator's current scope.
 */
export interface HostScope {
  ceiling: Role;
  layers: readonly (readonly CompiledGrant[])[];
}

export const MAX_GRANTS = 16;

/** Roles a scoped grant may carry: admin is panel-wide by definition (users, tokens, settings, CA). */
export const GRANT_ROLES = ['viewer', 'operator'] as const satisfies readonly Role[];

export function compileGrants(grants: readonly Grant[]): CompiledGrant[] {
  return grants.map((g) => {
    if (g.selector === null) return { role: g.role, terms: null };
    const p = parseSelector(g.selector);
    // A stored selector was validated on the way in; one that no longer parses matches nothing.
    return { role: g.role, terms: p.ok ? p.value : [{ key: 'ponio.invalid-selector', op: 'exists' }] };
  });
}

export const wholeFleet = (ceiling: Role): HostScope => ({ ceiling, layers: [] });

/** Whether the scope is every host (the actor's role applies everywhere). */
export const isWholeFleet = (s: HostScope): boolean => s.layers.length === 0;

const maxRole = (a: Role | null, b: Role): Role =>
  a === null || ROLES.indexOf(b) > ROLES.indexOf(a) ? b : a;

/** The role the scope gives on a host with these labels, or null (the host is out of scope). */
export function roleIn(scope: HostScope, labels: Readonly<Labels>): Role | null {
  let role: Role = scope.ceiling;
  for (const layer of scope.layers) {
    let best: Role | null = null;
    for (const g of layer)
      if (g.terms === null || selectorMatches(g.terms, labels)) best = maxRole(best, g.role);
    if (best === null) return null;
    role = minRole(role, best);
  }
  return role;
}

/** `operator on role=web; viewer on all hosts` (pages, CLI, audit). */
export const describeGrants = (grants: readonly Grant[]): string =>
  grants.length === 0
    ? 'all hosts'
    : grants.map((g) => `${g.role} on ${g.selector === null ? 'all hosts' : g.selector}`).join('; ');

/**
 * A grant list from the API, the dashboard form or the CLI: an array of `{ role, selector }`
 * (selector null or absent = all hosts), at most {@link MAX_GRANTS}. Returns a sentence on error.
 */
export function validateGrants(
  input: unknown,
): { ok: true; value: Grant[] } | { ok: false; message: string } {
  if (!Array.isArray(input)) return { ok: false, message: 'grants is a list of { role, selector }.' };
  if (input.length > MAX_GRANTS) return { ok: false, message: `A user has at most ${MAX_GRANTS} grants.` };
  const out: Grant[] = [];
  for (const raw of input as unknown[]) {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      return { ok: false, message: 'Each grant is an object { role, selector }.' };
    const { role, selector, ...rest } = raw as Record<string, unknown>;
    if (Object.keys(rest).length > 0)
      return { ok: false, message: `A grant has only role and selector (not ${Object.keys(rest)[0]}).` };
    if (!(GRANT_ROLES as readonly unknown[]).includes(role))
      return {
        ok: false,
        message: 'A grant role is operator or viewer (admin is panel-wide: make the user an admin).',
      };
    if (selector === undefined || selector === null) {
      out.push({ role: role as Role, selector: null });
      continue;
    }
    const p = parseSelector(selector);
    if (!p.ok) return { ok: false, message: p.message };
    out.push({ role: role as Role, selector: (selector as string).trim() });
  }
  return { ok: true, value: out };
}

/** `operator:role=web` / `viewer:*` (CLI and dashboard text form) into grants. */
export function parseGrantText(text: string): { ok: true; value: Grant[] } | { ok: false; message: string } {
  if (text.length > 4096) return { ok: false, message: 'The grants are too long.' };
  const lines = text
    .split(/[\n;]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const raw: unknown[] = [];
  for (const line of lines) {
    const at = line.indexOf(':');
    if (at < 0)
      return {
        ok: false,
        message: `${JSON.stringify(line.slice(0, 80))} is not a grant: write role:selector, e.g. operator:role=web or viewer:*.`,
      };
    const sel = line.slice(at + 1).trim();
    raw.push({ role: line.slice(0, at).trim(), selector: sel === '*' || sel === '' ? null : sel });
  }
  return validateGrants(raw);
}

/** The highest role in a grant list (a scoped user's role column: what they may do at most). */
export const highestRole = (grants: readonly Grant[]): Role | null =>
  grants.reduce<Role | null>((a, g) => maxRole(a, g.role), null);
