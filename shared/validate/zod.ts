import { z } from 'zod';
import type { Validated } from './result.ts';

/**
 * Turns a validator into a zod schema on top of a base schema (which documents the input type,
 * e.g. for OpenAPI): the validator's message becomes the issue message and its normalised value
 * the parsed output. One source of truth for panel and agent.
 */
export const fromValidator = <B extends z.ZodType, T>(
  base: B,
  validator: (input: z.output<B>) => Validated<T>,
) =>
  base.transform((input, ctx): T => {
    const r = validator(input);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: r.message });
      return z.NEVER;
    }
    return r.value;
  });
