import { z } from 'zod';
import type { EventName } from '../../shared/protocol/index.ts';
import type { Role } from '../auth/roles.ts';
import { JOB_ROUTES } from './openapi-jobs.ts';

/**
 * The REST routes the OpenAPI document (/api/v1/openapi.json) describes. A route bound to an RPC
 * `event` gets its request body and reply from that event's zod schemas (the single source of
 * truth); path parameters named like a request field are taken out of the body. Domains add
 * their routes here (docs/panel-extension.md); test/integration/openapi.test.ts calls every
 * listed route and fails when one is not served.
 */
export interface ApiRouteDoc {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI style, relative to /api/v1: `/hosts/{hostId}/websites/{domain}`. */
  path: string;
  summary: string;
  tag: string;
  role: Role;
  event?: EventName;
  /** Body fields that come from the query string instead (e.g. removeFiles). */
  query?: { name: string; description: string; schema: z.ZodType }[];
  body?: z.ZodType;
  /** Schema of `data` in the success reply. */
  data?: z.ZodType;
  /** Fields of the success reply beside `data` (e.g. `total` of a paged list). */
  extra?: Record<string, z.ZodType>;
  status?: number;
  /**
   * Host scopes (docs/security.md): a route under /hosts/{hostId} is checked by the one host
   * guard; every other route says what it is: 'panel' (about the panel, not a host: accounts,
   * tokens, the CA, adding a host) or 'scoped-list' (a list cut to the caller's hosts).
   * test/integration/security-scopes.test.ts fails on a route that says neither.
   */
  access?: 'panel' | 'scoped-list';
}

const role = z.enum(['admin', 'operator', 'viewer']);
export const userSchema = z.object({
  id: z.number().int(),
  username: z.string(),
  role,
  disabled: z.boolean(),
  mustChangePassword: z.boolean(),
  createdAt: z.number(),
  passwordChangedAt: z.number().nullable(),
});
export const tokenSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  prefix: z.string(),
  role,
  createdBy: z.number().int().nullable(),
  createdAt: z.number(),
  expiresAt: z.number().nullable(),
  revokedAt: z.number().nullable(),
  lastUsedAt: z.number().nullable(),
  selector: z
    .string()
    .nullable()
    .describe("label selector the token is limited to (null: its creator's scope)"),
  state: z.enum(['live', 'revoked', 'expired']),
});
export const auditEntrySchema = z.object({
  id: z.number().int(),
  at: z.number(),
  actor: z.string(),
  actorKind: z.enum(['user', 'token', 'cli', 'system']),
  hostId: z.string().nullable(),
  action: z.string(),
  params: z.unknown(),
  ok: z.boolean(),
  errorCode: z.string().nullable(),
  message: z.string().nullable(),
  durationMs: z.number().nullable(),
  jobId: z.number().int().nullable().describe('the job (docs/jobs.md) this entry belongs to'),
});
const hostSchema = z.object({
  id: z.string(),
  name: z.string(),
  mode: z
    .enum(['forward', 'reverse'])
    .describe(
      'who opens the link: forward, the panel connects to the agent; reverse, the agent connects to the panel',
    ),
  address: z.string().nullable().describe('where the panel connects to the agent; null in reverse mode'),
  port: z.number().int().nullable().describe('the agent port the panel connects to; null in reverse mode'),
  status: z.enum(['pending', 'enrolled']),
  certificate: z.object({ serial: z.string(), notAfter: z.number().nullable() }).nullable(),
  createdAt: z.number(),
  enrolledAt: z.number().nullable(),
  labels: z.record(z.string(), z.string()).describe('key=value labels (docs/jobs.md)'),
  connection: z
    .object({
      state: z.enum(['online', 'offline', 'connecting', 'refused']),
      lastSeen: z.number().nullable(),
      lastError: z.string().nullable(),
      agentVersion: z.string().nullable(),
      hostname: z.string().nullable(),
      adapter: z
        .enum(['system', 'sandbox'])
        .nullable()
        .describe(
          "how the agent drives its host (the hello's mode): the real services, or a private sandbox",
        ),
      modules: z.array(z.object({ name: z.string(), available: z.boolean(), reason: z.string().optional() })),
    })
    .nullable(),
});

/** POST /hosts and POST /hosts/{hostId}/token: the host and its one-time enrollment (docs/security.md). */
const newHostSchema = z.object({
  host: hostSchema.nullable(),
  token: z.string().describe('the join token: single use, valid one hour, shown only in this reply'),
  tokenExpiresAt: z.number(),
  caPin: z.string().describe('sha256:HEX of the panel CA certificate (DER)'),
  command: z
    .string()
    .describe('`ponio-agent enroll --panel … --token … --ca-pin …` (agent already installed)'),
  installCommand: z
    .string()
    .nullable()
    .describe(
      'one line that installs the agent from the panel and enrolls it: `curl -fsS --pinnedpubkey sha256//… -k https://PANEL/agent/install.sh | sh -s -- --panel … --token … --ca-pin …`; null when the panel has no agent release to serve',
    ),
});

const bool = z.enum(['true', 'false', '1', '0']);
const requireSchema = z.object({ require: z.enum(['off', 'admins', 'everyone']) });
const grantSchema = z.object({
  role: z.enum(['operator', 'viewer']),
  selector: z.string().nullable().describe('label selector such as role=web; null = all hosts'),
});

export const OPENAPI_ROUTES: ApiRouteDoc[] = [
  // --- panel: accounts, tokens, audit -------------------------------------------------------
  {
    method: 'get',
    path: '/me',
    summary: 'Who this token is',
    tag: 'panel',
    role: 'viewer',
    access: 'panel',
    data: z.object({
      name: z.string(),
      kind: z.string(),
      role,
      hosts: z
        .union([z.literal('all'), z.array(z.string())])
        .describe('the host ids this caller may see (docs/security.md "Host scopes")'),
    }),
  },
  {
    method: 'get',
    path: '/users',
    summary: 'List dashboard users',
    tag: 'users',
    role: 'admin',
    access: 'panel',
    data: z.array(userSchema),
  },
  {
    method: 'post',
    path: '/users',
    summary: 'Create a user (the password is temporary unless mustChangePassword is false)',
    tag: 'users',
    role: 'admin',
    access: 'panel',
    status: 201,
    body: z.object({
      username: z.string(),
      password: z.string().min(10).max(256),
      role,
      mustChangePassword: z.boolean().optional(),
    }),
    data: userSchema,
  },
  {
    method: 'get',
    path: '/users/{id}',
    summary: 'One user',
    tag: 'users',
    role: 'admin',
    access: 'panel',
    data: userSchema,
  },
  {
    method: 'patch',
    path: '/users/{id}',
    summary: 'Change role or disable/enable (disabling signs the user out)',
    tag: 'users',
    role: 'admin',
    access: 'panel',
    body: z.object({ role: role.optional(), disabled: z.boolean().optional() }),
    data: userSchema,
  },
  {
    method: 'put',
    path: '/users/{id}/password',
    summary: "Set a user's password (signs them out everywhere)",
    tag: 'users',
    role: 'admin',
    access: 'panel',
    body: z.object({ password: z.string().min(10).max(256) }),
    data: z.object({ changed: z.literal(true) }),
  },
  {
    method: 'get',
    path: '/users/{id}/grants',
    summary: "A user's host grants (empty: their role on every host)",
    tag: 'users',
    role: 'admin',
    access: 'panel',
    data: z.array(grantSchema),
  },
  {
    method: 'put',
    path: '/users/{id}/grants',
    summary: "Replace a user's host grants (role on all hosts or on a label selector); [] = every host",
    tag: 'users',
    role: 'admin',
    access: 'panel',
    body: z.object({ grants: z.array(grantSchema) }),
    data: z.array(grantSchema),
  },
  {
    method: 'delete',
    path: '/users/{id}/two-factor',
    summary:
      "Reset a user's two-factor sign-in (lost device): authenticator, passkeys and recovery codes removed; signs them out",
    tag: 'users',
    role: 'admin',
    access: 'panel',
    data: z.object({ reset: z.literal(true), message: z.string() }),
  },
  {
    method: 'get',
    path: '/settings/two-factor',
    summary: 'Who must use two-factor sign-in',
    tag: 'panel',
    role: 'admin',
    access: 'panel',
    data: requireSchema,
  },
  {
    method: 'put',
    path: '/settings/two-factor',
    summary:
      'Require two-factor sign-in for nobody, admins or everyone (who has none enrols at the next sign-in)',
    tag: 'panel',
    role: 'admin',
    access: 'panel',
    body: requireSchema,
    data: requireSchema,
  },
  {
    method: 'delete',
    path: '/users/{id}',
    summary: 'Delete a user',
    tag: 'users',
    role: 'admin',
    access: 'panel',
    data: z.object({ deleted: z.literal(true) }),
  },
  {
    method: 'get',
    path: '/tokens',
    summary: 'List API tokens (never the secrets)',
    tag: 'tokens',
    role: 'admin',
    access: 'panel',
    data: z.array(tokenSchema),
  },
  {
    method: 'post',
    path: '/tokens',
    summary: 'Create an API token; the secret is in this reply only',
    tag: 'tokens',
    role: 'admin',
    access: 'panel',
    status: 201,
    body: z.object({
      name: z.string().max(64),
      role,
      expiresInDays: z.number().int().min(1).max(3650).optional(),
      selector: z
        .string()
        .optional()
        .describe('limit the token to hosts matching this label selector, e.g. role=web (not for admin)'),
    }),
    data: tokenSchema.extend({ token: z.string() }),
  },
  {
    method: 'delete',
    path: '/tokens/{id}',
    summary: 'Revoke an API token',
    tag: 'tokens',
    role: 'admin',
    access: 'panel',
    data: tokenSchema,
  },
  {
    method: 'get',
    path: '/audit',
    summary: 'The audit log, newest first',
    tag: 'audit',
    role: 'viewer',
    access: 'scoped-list',
    query: [
      { name: 'host', description: 'host id', schema: z.string() },
      {
        name: 'actor',
        description: 'user, token:<name> (CLI token) or token:<name> (<creator>)',
        schema: z.string(),
      },
      { name: 'action', description: "e.g. 'create website'", schema: z.string() },
      { name: 'job', description: 'job id: the job and each host call under it', schema: z.string() },
      { name: 'limit', description: '1–500 (default 50)', schema: z.string() },
      { name: 'offset', description: 'entries to skip', schema: z.string() },
    ],
    data: z.object({ entries: z.array(auditEntrySchema), total: z.number().int() }),
  },
  // --- hosts ------------------------------------------------------------------------------------
  {
    method: 'get',
    path: '/hosts',
    summary: 'Hosts with their live connection state',
    tag: 'hosts',
    role: 'viewer',
    access: 'scoped-list',
    data: z.array(hostSchema),
  },
  {
    method: 'post',
    path: '/hosts',
    summary: 'Add a host: a pending host, its join token and the enrollment commands',
    tag: 'hosts',
    role: 'operator',
    access: 'panel',
    body: z.strictObject({
      name: z.string(),
      address: z
        .string()
        .optional()
        .describe('DNS name or IP the panel connects to, optionally HOST:PORT (forward mode only)'),
      port: z.number().int().min(1).max(65535).optional().describe('agent port (default 7443)'),
      mode: z
        .enum(['forward', 'reverse'])
        .optional()
        .describe('reverse: the panel cannot reach the host, its agent connects to the panel (no address)'),
    }),
    data: newHostSchema,
    status: 201,
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/token',
    summary: 'Issue a new join token (revokes unused ones; allows enrolling the host again)',
    tag: 'hosts',
    role: 'operator',
    data: newHostSchema,
    status: 201,
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/token',
    summary: 'Revoke the unused join tokens of a host',
    tag: 'hosts',
    role: 'operator',
    data: z.object({ revoked: z.number().int() }),
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}',
    summary: 'Remove a host: revokes its certificate and drops its connection at once',
    tag: 'hosts',
    role: 'operator',
    data: z.object({ id: z.string(), name: z.string(), removed: z.literal(true) }),
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/certificate/renew',
    summary: "Renew the host's certificate now over the live link (otherwise done at 2/3 of its life)",
    tag: 'hosts',
    role: 'operator',
    data: z.object({ serial: z.string(), notAfter: z.number().nullable() }),
  },
  {
    method: 'put',
    path: '/hosts/{hostId}/mode',
    summary:
      'Switch a host between forward and reverse mode (keeps its certificate); the reply says what to change on the host',
    tag: 'hosts',
    role: 'operator',
    body: z.object({
      mode: z.enum(['forward', 'reverse']),
      address: z.string().optional().describe('forward mode: DNS name or IP, optionally HOST:PORT'),
      port: z.number().int().optional(),
    }),
    data: z.object({
      host: hostSchema.nullable(),
      previous: z.object({
        mode: z.enum(['forward', 'reverse']),
        address: z.string(),
        port: z.number().int(),
      }),
      steps: z
        .array(z.string())
        .describe("what the host's admin does now: edit the agent config, or re-enroll"),
      token: z.string().describe('a join token for `ponio-agent enroll --force` (single use, one hour)'),
      tokenExpiresAt: z.number(),
      caPin: z.string(),
      command: z
        .string()
        .describe('`ponio-agent enroll --force …`: rewrites the agent config for the new mode'),
    }),
  },
  {
    method: 'post',
    path: '/panel/certificate/rotate',
    summary: "Rotate the panel's client certificate; the old serial is revoked and pushed to agents",
    tag: 'panel',
    role: 'admin',
    access: 'panel',
    data: z.object({ oldSerial: z.string(), newSerial: z.string() }),
  },
  {
    method: 'get',
    path: '/hosts/{hostId}',
    summary: 'One host',
    tag: 'hosts',
    role: 'viewer',
    data: hostSchema,
  },
  {
    method: 'get',
    path: '/hosts/{hostId}/system',
    summary: 'System facts of the host',
    tag: 'hosts',
    role: 'viewer',
    event: 'system info',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/ping',
    summary: 'Ping the agent',
    tag: 'hosts',
    role: 'viewer',
    event: 'ping',
  },
  // --- websites ---------------------------------------------------------------------------------
  {
    method: 'get',
    path: '/hosts/{hostId}/websites',
    summary: 'List websites',
    tag: 'websites',
    role: 'viewer',
    event: 'list websites',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/websites',
    summary: 'Create a website',
    tag: 'websites',
    role: 'operator',
    event: 'create website',
    status: 201,
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/websites/{domain}/enable',
    summary: 'Enable a website',
    tag: 'websites',
    role: 'operator',
    event: 'enable website',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/websites/{domain}/disable',
    summary: 'Disable a website',
    tag: 'websites',
    role: 'operator',
    event: 'disable website',
  },
  {
    method: 'put',
    path: '/hosts/{hostId}/websites/{domain}/php',
    summary: "Set a website's PHP (a version installed on the host, or none) and its settings",
    tag: 'websites',
    role: 'operator',
    event: 'set website php',
  },
  {
    method: 'put',
    path: '/hosts/{hostId}/websites/{domain}/https',
    summary:
      "Set a website's HTTPS: a certificate from the host's ACME CA (renewed automatically), an uploaded one, or off; redirect and HSTS",
    tag: 'websites',
    role: 'operator',
    event: 'set website https',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/websites/{domain}/renew-certificate',
    summary: "Renew a website's ACME certificate now",
    tag: 'websites',
    role: 'operator',
    event: 'renew website certificate',
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/websites/{domain}',
    summary: 'Delete a website (files only with removeFiles=true)',
    tag: 'websites',
    role: 'operator',
    event: 'delete website',
    query: [{ name: 'removeFiles', description: 'also delete the site files', schema: bool }],
  },
  // --- ftp ----------------------------------------------------------------------------------------
  {
    method: 'get',
    path: '/hosts/{hostId}/ftp-users',
    summary: 'List FTP users',
    tag: 'ftp',
    role: 'viewer',
    event: 'list ftp users',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/ftp-users',
    summary: 'Create an FTP user',
    tag: 'ftp',
    role: 'operator',
    event: 'create ftp user',
    status: 201,
  },
  {
    method: 'put',
    path: '/hosts/{hostId}/ftp-users/{username}/password',
    summary: 'Set an FTP password',
    tag: 'ftp',
    role: 'operator',
    event: 'set ftp password',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/ftp-users/{username}/disable',
    summary: 'Disable an FTP user',
    tag: 'ftp',
    role: 'operator',
    event: 'disable ftp user',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/ftp-users/{username}/enable',
    summary: 'Enable an FTP user',
    tag: 'ftp',
    role: 'operator',
    event: 'enable ftp user',
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/ftp-users/{username}',
    summary: 'Delete an FTP user (files kept)',
    tag: 'ftp',
    role: 'operator',
    event: 'delete ftp user',
  },
  // --- mysql --------------------------------------------------------------------------------------
  {
    method: 'get',
    path: '/hosts/{hostId}/databases',
    summary: 'List databases with their sizes',
    tag: 'mysql',
    role: 'viewer',
    event: 'list databases',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/databases',
    summary: 'Create a database',
    tag: 'mysql',
    role: 'operator',
    event: 'create database',
    status: 201,
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/databases/{name}',
    summary: 'Drop a database (and the grants on it)',
    tag: 'mysql',
    role: 'operator',
    event: 'drop database',
  },
  {
    method: 'get',
    path: '/hosts/{hostId}/database-users',
    summary: 'List database users with their grants',
    tag: 'mysql',
    role: 'viewer',
    event: 'list database users',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/database-users',
    summary: 'Create a database user',
    tag: 'mysql',
    role: 'operator',
    event: 'create database user',
    status: 201,
  },
  {
    method: 'put',
    path: '/hosts/{hostId}/database-users/{user}/{host}/password',
    summary: 'Set a database user password (host URL-encoded: % is %25)',
    tag: 'mysql',
    role: 'operator',
    event: 'set database password',
  },
  {
    method: 'put',
    path: '/hosts/{hostId}/database-users/{user}/{host}/grants/{database}',
    summary: 'Set the privileges of a database user on a database',
    tag: 'mysql',
    role: 'operator',
    event: 'grant database',
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/database-users/{user}/{host}/grants/{database}',
    summary: 'Revoke all privileges of a database user on a database',
    tag: 'mysql',
    role: 'operator',
    event: 'revoke database',
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/database-users/{user}/{host}',
    summary: 'Drop a database user',
    tag: 'mysql',
    role: 'operator',
    event: 'drop database user',
  },
  // --- firewall -----------------------------------------------------------------------------------
  {
    method: 'get',
    path: '/hosts/{hostId}/firewall',
    summary: 'List firewall rules, blocks, baseline, pending confirmation and other tools’ rules',
    tag: 'firewall',
    role: 'viewer',
    event: 'list firewall rules',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/firewall/rules',
    summary: 'Add a firewall rule (may answer pending: confirm within the timeout)',
    tag: 'firewall',
    role: 'operator',
    event: 'add firewall rule',
    status: 201,
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/firewall/rules/{id}',
    summary: 'Delete a firewall rule',
    tag: 'firewall',
    role: 'operator',
    event: 'delete firewall rule',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/firewall/blocks',
    summary: 'Block an address or range, optionally until an expiry',
    tag: 'firewall',
    role: 'operator',
    event: 'block ip',
    status: 201,
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/firewall/blocks/{address}',
    summary: 'Unblock an address or range (a CIDR’s / URL-encoded as %2F)',
    tag: 'firewall',
    role: 'operator',
    event: 'unblock ip',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/firewall/baseline',
    summary: 'Apply the recommended baseline (confirm mode)',
    tag: 'firewall',
    role: 'operator',
    event: 'apply firewall baseline',
  },
  {
    method: 'delete',
    path: '/hosts/{hostId}/firewall/baseline',
    summary: 'Remove the baseline’s fixed parts (rules stay)',
    tag: 'firewall',
    role: 'operator',
    event: 'remove firewall baseline',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/firewall/reapply',
    summary: 'Apply the saved firewall rule set again (after its chains were changed outside PonIO)',
    tag: 'firewall',
    role: 'operator',
    event: 'reapply firewall',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/firewall/confirm',
    summary: 'Keep a firewall change applied in confirm mode',
    tag: 'firewall',
    role: 'operator',
    event: 'confirm firewall',
  },
  // --- backups ------------------------------------------------------------------------------------
  {
    method: 'get',
    path: '/hosts/{hostId}/backups',
    summary: 'List snapshots (per site / database, with sizes), schedule, retention and the last runs',
    tag: 'backups',
    role: 'viewer',
    event: 'list backups',
    query: [
      {
        name: 'kind',
        description: 'only snapshots of sites or of databases',
        schema: z.enum(['site', 'database']),
      },
      { name: 'name', description: 'only snapshots of this site or database', schema: z.string() },
    ],
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/backups',
    summary: 'Back up sites and databases now (all of them when none is named)',
    tag: 'backups',
    role: 'operator',
    event: 'back up',
    status: 201,
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/backups/{snapshot}/restore',
    summary:
      'Restore a snapshot to its own name (the current state is backed up first) or to a new name (as)',
    tag: 'backups',
    role: 'operator',
    event: 'restore backup',
  },
  {
    method: 'put',
    path: '/hosts/{hostId}/backups/settings',
    summary: 'Set the schedule, the retention and the trash period',
    tag: 'backups',
    role: 'operator',
    event: 'set backup settings',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/backups/prune',
    summary: 'Apply the retention and purge expired trash snapshots now (restic forget --prune)',
    tag: 'backups',
    role: 'operator',
    event: 'prune backups',
  },
  {
    method: 'post',
    path: '/hosts/{hostId}/backups/check',
    summary: 'Check the repository’s integrity now (restic check)',
    tag: 'backups',
    role: 'operator',
    event: 'check backups',
  },
  ...JOB_ROUTES,
];
