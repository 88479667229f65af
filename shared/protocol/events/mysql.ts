import { z } from 'zod';
import { defineEvent, request } from '../define.ts';
import { registerEvents } from '../catalog.ts';
import {
  CHARSETS,
  DB_NAME_MAX,
  DB_PASSWORD_MAX,
  DB_USER_MAX,
  validateDatabaseName,
  validateDatabasePassword,
  validateDatabaseUser,
  validateHostPattern,
  validatePrivileges,
} from '../../validate/mysql.ts';
import { fromValidator } from '../../validate/zod.ts';

// One source of truth: the rules live in shared/validate/mysql.ts (panel and agent use the same).
// The bases are loose on length only so that the validator, not zod, writes the message.
export const dbNameSchema = fromValidator(z.string().max(DB_NAME_MAX * 4), validateDatabaseName);
export const dbUserSchema = fromValidator(z.string().max(DB_USER_MAX * 4), validateDatabaseUser);
export const dbHostSchema = fromValidator(z.string().max(240), validateHostPattern);
export const dbPasswordSchema = fromValidator(z.string().max(DB_PASSWORD_MAX * 4), validateDatabasePassword);
export const privilegeSetSchema = fromValidator(
  z.union([z.literal('all'), z.literal('read-only'), z.array(z.string().max(160)).min(1).max(40)]),
  validatePrivileges,
);
const charsetNames = Object.keys(CHARSETS) as [keyof typeof CHARSETS, ...(keyof typeof CHARSETS)[]];
const collationNames = Object.values(CHARSETS).flat() as [string, ...string[]];

export const databaseSchema = z.strictObject({
  name: z.string(),
  /** Data + index size as the server reports it (information_schema.TABLES). */
  sizeBytes: z.number(),
  tables: z.number().int(),
  charset: z.string(),
  collation: z.string(),
});
export type Database = z.infer<typeof databaseSchema>;

export const databaseGrantSchema = z.strictObject({
  database: z.string(),
  /** Upper-case privilege names, e.g. ["SELECT", "SHOW VIEW"]. */
  privileges: z.array(z.string()),
});
export const databaseUserSchema = z.strictObject({
  user: z.string(),
  host: z.string(),
  grants: z.array(databaseGrantSchema),
});
export type DatabaseUser = z.infer<typeof databaseUserSchema>;

const account = { user: dbUserSchema, host: dbHostSchema };

export const mysqlEvents = {
  'list databases': defineEvent({
    module: 'mysql',
    mutation: false,
    timeoutMs: 15_000,
    summary: 'Lists databases with their size (system schemas are not listed).',
    request: request({}),
    reply: z.strictObject({ databases: z.array(databaseSchema) }),
  }),
  'create database': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Creates a database (character set and collation from an allow-list; default utf8mb4).',
    // The pair (collation of that charset) is checked by the agent with validateCharset: a
    // refinement here would stop the OpenAPI generator from deriving the body schema.
    request: request({
      name: dbNameSchema,
      charset: z.enum(charsetNames).optional(),
      collation: z.enum(collationNames).optional(),
    }),
    reply: databaseSchema,
  }),
  'drop database': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Drops a database and everything in it, and removes the grants on it.',
    request: request({ name: dbNameSchema }),
    reply: z.strictObject({ name: z.string() }),
  }),
  'list database users': defineEvent({
    module: 'mysql',
    mutation: false,
    timeoutMs: 15_000,
    summary: 'Lists database accounts with their grants (server and admin accounts are not listed).',
    request: request({}),
    reply: z.strictObject({ users: z.array(databaseUserSchema) }),
  }),
  'create database user': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Creates a database account.',
    secrets: ['password'],
    request: request({ ...account, password: dbPasswordSchema }),
    reply: databaseUserSchema,
  }),
  'set database password': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Sets a new password for a database account.',
    secrets: ['password'],
    request: request({ ...account, password: dbPasswordSchema }),
    reply: databaseUserSchema,
  }),
  'grant database': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 30_000,
    summary:
      'Sets the privileges of an account on one database (all, read-only or a list); replaces what it had there.',
    request: request({ ...account, database: dbNameSchema, privileges: privilegeSetSchema }),
    reply: databaseUserSchema,
  }),
  'revoke database': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Revokes all privileges of an account on a database.',
    request: request({ ...account, database: dbNameSchema }),
    reply: databaseUserSchema,
  }),
  'drop database user': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Drops a database account.',
    request: request(account),
    reply: z.strictObject({ user: z.string(), host: z.string() }),
  }),
} as const;

// The agent's router validates with what is registered: only the domains a process loaded.
registerEvents(mysqlEvents);
