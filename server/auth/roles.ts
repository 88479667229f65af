export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** admin ⊃ operator ⊃ viewer. */
export const roleAtLeast = (actual: Role, needed: Role): boolean =>
  ROLES.indexOf(actual) >= ROLES.indexOf(needed);

/** The lower of two roles (what a token may do when its creator's role is lower than its own). */
export const minRole = (a: Role, b: Role): Role => (ROLES.indexOf(a) <= ROLES.indexOf(b) ? a : b);

export const isRole = (v: unknown): v is Role =>
  typeof v === 'string' && (ROLES as readonly string[]).includes(v);
