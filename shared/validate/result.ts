/** A validator returns the normalised value or a message a person understands. */
export type Validated<T> = { ok: true; value: T } | { ok: false; message: string };

export const valid = <T>(value: T): Validated<T> => ({ ok: true, value });
export const invalid = (message: string): Validated<never> => ({ ok: false, message });

/** Describes a string for an error message without echoing control characters or huge input. */
export const describeInput = (input: string): string => {
  const shown = input.length > 40 ? `${input.slice(0, 40)}…` : input;
  return JSON.stringify(shown);
};

// eslint-disable-next-line no-control-regex
export const hasControlChars = (s: string): boolean => /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(s);
