import { z } from 'zod';
import { defineEvent, request } from '../define.ts';

// First draft: the FTP module owns and tightens these (shared/validate/ftp.ts).
export const ftpUsernameSchema = z.string().min(1).max(32);
export const ftpPasswordSchema = z.string().min(8).max(128);

export const ftpUserSchema = z.strictObject({
  username: z.string(),
  home: z.string(),
  uid: z.number().int(),
  gid: z.number().int(),
  enabled: z.boolean(),
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
      home: z.string().min(1).max(4096),
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
