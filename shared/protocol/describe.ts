import type { z } from 'zod';

/** Turns zod issues into one sentence an admin can act on (agent router and panel alike). */
export function describeZodError(error: z.ZodError): string {
  const parts = error.issues.slice(0, 5).map((i) => {
    const where = i.path.length > 0 ? `${i.path.join('.')}: ` : '';
    if (i.code === 'unrecognized_keys') return `${where}unknown field(s) ${i.keys.join(', ')}`;
    return `${where}${i.message}`;
  });
  return parts.join('; ');
}
