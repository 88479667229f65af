import { z } from 'zod';
import { defineEvent, request } from '../define.ts';
import { registerEvents } from '../catalog.ts';
import {
  FTP_HOME_MAX,
  FTP_PASSWORD_MAX,
  FTP_USERNAME_MAX,
  validateFtpHome,
  validateFtpPassword,
  validateFtpUsername,
} from '../../validate/ftp.ts';
import { fromValidator } from '../../validate/zod.ts';

// One source of truth: the rules live in shared/validate/ftp.ts (panel and agent use the same).
export const ftpUsernameSchema = fromValidator(z.string().max(FTP_USERNAME_MAX * 4), validateFtpUsername);
export const ftpPasswordSchema = fromValidator(z.string().max(FTP_PASSWORD_MAX * 4), validateFtpPassword);
export const ftpHomeSchema = fromValidator(z.string().max(FTP_HOME_MAX * 4), validateFtpHome);

export const ftpUserSchema = z.strictObject({
  username: z.string(),
  /** Real absolute path of the home (the user is jailed there: `DefaultRoot ~`). */
  home: z.string(),
  uid: z.number().int(),
  gid: z.number().int(),
  enabled: z.boolean(),
  /** false when the home directory is gone (e.g. its website was deleted): logins then fail. */
  homeExists: z.boolean(),
});
export type FtpUser = z.infer<typeof ftpUserSchema>;

const byUser = request({ username: ftpUsernameSchema });

export const ftpEvents = {
  'list ftp users': defineEvent({
    module: 'ftp',
    mutation: false,
    timeoutMs: 10_000,
    summary: 'Lists the virtual FTP users.',
    request: request({}),
    reply: z.strictObject({ users: z.array(ftpUserSchema) }),
  }),
  'create ftp user': defineEvent({
    module: 'ftp',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Creates a virtual FTP user jailed in a home inside a website or the FTP root.',
    secrets: ['password'],
    request: request({
      username: ftpUsernameSchema,
      password: ftpPasswordSchema,
      home: ftpHomeSchema,
    }),
    reply: ftpUserSchema,
  }),
  'set ftp password': defineEvent({
    module: 'ftp',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Sets a new password for an FTP user.',
    secrets: ['password'],
    request: request({ username: ftpUsernameSchema, password: ftpPasswordSchema }),
    reply: ftpUserSchema,
  }),
  'disable ftp user': defineEvent({
    module: 'ftp',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Refuses the user’s logins; nothing is deleted.',
    request: byUser,
    reply: ftpUserSchema,
  }),
  'enable ftp user': defineEvent({
    module: 'ftp',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Allows a disabled user to log in again.',
    request: byUser,
    reply: ftpUserSchema,
  }),
  'delete ftp user': defineEvent({
    module: 'ftp',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Deletes an FTP user (its files are kept).',
    request: byUser,
    reply: z.strictObject({ username: z.string() }),
  }),
} as const;

// The agent's router validates with what is registered: only the domains a process loaded.
registerEvents(ftpEvents);
