export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** admin ⊃ operator ⊃ viewer. */
export const roleAtLeast = (actual: Role, needed: Role): boolean =>
  ROLES.indexOf(actual) >= ROLES.indexOf(needed);

export const isRole = (v: unknown): v is Role =>
  typeof v === 'string' && (ROLES as readonly string[]).includes(v);
