import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { HostLayout } from '../../os/layout.ts';

/**
 * The backups module's settings: `modules.backups` in the agent config (all optional).
 *
 * ```json
 * { "modules": { "backups": {
 *     "repository": "sftp:backup@store.example.net:/srv/restic/web1",
 *     "passwordFile": "/etc/ponio-agent/backups.password",
 *     "envFile": "/etc/ponio-agent/backups.env" } } }
 * ```
 * - `repository`: a local absolute path (default `<state dir>/backups/repository`), `sftp:user@host:/path`
 *   (the agent's root ssh key and known_hosts), `s3:https://endpoint/bucket/path` or
 *   `rest:https://host:port/path`. Never credentials in it: they go in `envFile`.
 * - `passwordFile`: the repository password (0600; default `<config dir>/backups.password`,
 *   made with 32 random bytes on first use). Given to restic as RESTIC_PASSWORD_FILE only.
 * - `envFile`: `KEY=value` lines for S3 or REST credentials (AWS_ACCESS_KEY_ID,
 *   AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION, RESTIC_REST_USERNAME,
 *   RESTIC_REST_PASSWORD), read as data and passed in restic's environment.
 */
const LOCAL = /^\/[^\0\n\r]*$/;
const SFTP = /^sftp:[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\/[A-Za-z0-9._/-]*$/;
const S3 = /^s3:https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/[A-Za-z0-9._/-]+$/;
const REST = /^rest:https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._/-]*)?$/;

export function validateRepository(s: string): string | null {
  if (s.length > 1024) return 'is too long';
  if (LOCAL.test(s)) return s.split('/').includes('..') ? 'must not contain ".."' : null;
  if (SFTP.test(s) || S3.test(s) || REST.test(s)) return s.includes('..') ? 'must not contain ".."' : null;
  return 'must be an absolute path, sftp:user@host:/path, s3:https://endpoint/bucket/path or rest:https://host/path (credentials go in envFile)';
}

export const backupsSettingsSchema = z.strictObject({
  repository: z
    .string()
    .superRefine((s, ctx) => {
      const why = validateRepository(s);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    })
    .optional(),
  passwordFile: z
    .string()
    .max(1024)
    .refine((s) => path.isAbsolute(s) && !s.includes('\0'), 'must be an absolute path')
    .optional(),
  envFile: z
    .string()
    .max(1024)
    .refine((s) => path.isAbsolute(s) && !s.includes('\0'), 'must be an absolute path')
    .optional(),
});
export type BackupsSettings = z.infer<typeof backupsSettingsSchema>;

const ENV_KEYS = new Set([
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_DEFAULT_REGION',
  'RESTIC_REST_USERNAME',
  'RESTIC_REST_PASSWORD',
]);

/** Where the repository is and how restic opens it. */
export interface BackupRepository {
  location: string;
  local: boolean;
  passwordFile: string;
  env: Record<string, string>;
  envFile: string | undefined;
}

/** Parses `modules.backups`; throws an Error with one clear sentence. */
export function parseBackupsSettings(raw: unknown, layout: HostLayout): BackupRepository {
  const r = backupsSettingsSchema.safeParse(raw ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    const where = i && i.path.length > 0 ? `modules.backups.${i.path.join('.')}: ` : 'modules.backups: ';
    const what =
      i?.code === 'unrecognized_keys' ? `unknown setting(s) ${i.keys.join(', ')}` : (i?.message ?? '');
    throw new Error(`invalid backups settings: ${where}${what}`);
  }
  const s = r.data;
  const location = s.repository ?? path.join(layout.stateDir, 'backups', 'repository');
  return {
    location,
    local: location.startsWith('/'),
    passwordFile: s.passwordFile ?? path.join(layout.configDir, 'backups.password'),
    env: {},
    envFile: s.envFile,
  };
}

/** Reads the credentials file (only the allowed keys), when one is configured. */
export function readEnvFile(file: string | undefined): Record<string, string> {
  if (file === undefined) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && ENV_KEYS.has(m[1])) out[m[1]] = m[2] ?? '';
  }
  return out;
}

/** The repository location as it may be shown: a local path, or the URL without user info. */
export const shownLocation = (location: string): string =>
  location.replace(/^(rest:https?:\/\/)[^@/]*@/, '$1');

/**
 * Makes the password file on first use (0600, 32 random bytes, base64) and checks an existing
 * one is not readable by others.
 */
export async function ensurePasswordFile(file: string): Promise<void> {
  try {
    const st = await fsp.stat(file);
    if ((st.mode & 0o077) !== 0)
      throw new Error(`the backup password file ${file} is readable by others (chmod 600 it)`);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fsp.writeFile(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
}
