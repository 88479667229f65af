import { z } from 'zod';
import { defineEvent, request } from '../define.ts';

// First draft: the MySQL module owns and tightens these (shared/validate/mysql.ts).
export const dbNameSchema = z.string().min(1).max(64);
export const dbUserSchema = z.string().min(1).max(32);
export const dbHostSchema = z.string().min(1).max(60);
export const dbPasswordSchema = z.string().min(8).max(128);
export const privilegeSetSchema = z.union([
  z.literal('all'),
  z.literal('read-only'),
  z.array(z.string()).min(1).max(20),
]);

export const databaseSchema = z.strictObject({
  name: z.string(),
  sizeBytes: z.number(),
  tables: z.number().int(),
});
export const databaseUserSchema = z.strictObject({
  user: z.string(),
  host: z.string(),
  grants: z.array(z.strictObject({ database: z.string(), privileges: z.array(z.string()) })),
});

const account = { user: dbUserSchema, host: dbHostSchema };

export const mysqlEvents = {
  'list databases': defineEvent({
    module: 'mysql',
    mutation: false,
    timeoutMs: 15_000,
    summary: 'Lists databases with their size.',
    request: request({}),
    reply: z.strictObject({ databases: z.array(databaseSchema) }),
  }),
  'create database': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 30_000,
    summary: 'Creates a database.',
    request: request({
      name: dbNameSchema,
      charset: z.string().max(32).optional(),
      collation: z.string().max(64).optional(),
    }),
    reply: databaseSchema,
  }),
  'drop database': defineEvent({
    module: 'mysql',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Drops a database and everything in it.',
    request: request({ name: dbNameSchema }),
    reply: z.strictObject({ name: z.string() }),
  }),
  'list database users': defineEvent({
    module: 'mysql',
    mutation: false,
    timeoutMs: 15_000,
    summary: 'Lists database accounts with their grants.',
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
    summary: 'Grants an account privileges on a database.',
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
