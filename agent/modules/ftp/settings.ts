import path from 'node:path';
import { z } from 'zod';
import { validatePort } from '../../../shared/validate/network.ts';

const port = z
  .number()
  .int()
  .refine((n) => validatePort(n).ok, 'must be a port number (1–65535)');

/**
 * The agent config's `modules.ftp` settings:
 * - `ftpRoot`: absolute directory for FTP homes that are not inside a website
 *   (default `/srv/ftp`, or `<sandbox>/srv/ftp`);
 * - sandbox only: `port` (default: a free loopback port) and `passivePorts` `[first, last]`
 *   (default: a free block of 16 ports).
 */
export const ftpSettingsSchema = z.strictObject({
  ftpRoot: z
    .string()
    .max(1024)
    .refine((p) => path.isAbsolute(p) && path.normalize(p) === p && p !== '/' && !/[:\n\r\0]/.test(p), {
      message: 'must be an absolute, normalised directory other than /',
    })
    .optional(),
  port: port.optional(),
  passivePorts: z
    .tuple([port, port])
    .refine(([a, b]) => a <= b && b - a < 1000, 'must be [first, last] with first ≤ last')
    .optional(),
});
export type FtpSettings = z.infer<typeof ftpSettingsSchema>;

export function parseFtpSettings(raw: unknown): FtpSettings {
  const r = ftpSettingsSchema.safeParse(raw ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`invalid modules.ftp setting ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`);
  }
  return r.data;
}
