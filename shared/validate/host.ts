import { describeInput, invalid, valid, type Validated } from './result.ts';

/** Host ids appear in certificate URIs (`urn:ponio:host:<id>`), URLs and file names. */
export function validateHostId(input: unknown): Validated<string> {
  if (typeof input !== 'string' || !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(input))
    return invalid(
      `${describeInput(String(input))} is not a host id (lower-case letters, digits and dashes, at most 63).`,
    );
  return valid(input);
}
