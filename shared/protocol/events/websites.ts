import { z } from 'zod';
import { defineEvent, request } from '../define.ts';
import { registerEvents } from '../catalog.ts';
import { validateDomain } from '../../validate/domain.ts';
import { fromValidator } from '../../validate/zod.ts';

export const domainSchema = fromValidator(z.string().max(300), validateDomain);

/** An admin e-mail for ServerAdmin: a plain address, nothing Apache or a shell could read as syntax. */
export const adminEmailSchema = z
  .email('adminEmail: not a valid e-mail address')
  .max(254)
  .refine((s) => /^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$/.test(s), {
    message: 'adminEmail may contain only letters, digits and . _ % + - before the @',
  });

/** PHP versions PonIO knows how to run per site (php<version>-fpm); a host offers those installed. */
export const PHP_VERSIONS = ['7.4', '8.0', '8.1', '8.2', '8.3', '8.4'] as const;
export type PhpVersion = (typeof PHP_VERSIONS)[number];
export const phpChoiceSchema = z.enum([...PHP_VERSIONS, 'none'], {
  error: () => `php must be one of ${PHP_VERSIONS.join(', ')} or none`,
});

/**
 * The PHP settings an admin may change per site. Numbers and booleans only: nothing typed here
 * can become a directive of its own in the pool file (agent/modules/websites/php-pool.ts).
 */
export const phpSettingsSchema = z.strictObject({
  memoryLimitMb: z.number().int().min(16).max(4096).optional(),
  uploadMaxMb: z.number().int().min(1).max(2048).optional(),
  maxExecutionSeconds: z.number().int().min(1).max(3600).optional(),
  /** pm.max_children of the pool. */
  maxChildren: z.number().int().min(1).max(64).optional(),
  displayErrors: z.boolean().optional(),
});
export type PhpSettings = z.infer<typeof phpSettingsSchema>;

export const sitePhpSchema = z.strictObject({
  version: z.string(),
  settings: phpSettingsSchema,
  /** The php-fpm pool's socket Apache proxies .php requests to. */
  socket: z.string(),
  /** The site's php-fpm pool file on the host (what a backup of the site includes). */
  poolFile: z.string().optional(),
});

/** A PEM text of limited size (an uploaded certificate chain or key). */
const pem = (what: string, max: number) =>
  z
    .string()
    .max(max, `${what} is larger than ${max / 1024} KiB`)
    .refine((s) => !s.includes('\0'), { message: `${what} contains a NUL byte` });

export const HTTPS_MODES = ['off', 'acme', 'own'] as const;

/** The certificate a site's HTTPS serves, and its renewal. Times in ms since the epoch. */
export const siteCertificateSchema = z.strictObject({
  names: z.array(z.string()),
  issuer: z.string(),
  notBefore: z.number(),
  notAfter: z.number(),
  /** ACME: when the agent renews it (two thirds of its life); null for an uploaded one. */
  renewAt: z.number().nullable(),
});

export const siteHttpsSchema = z.strictObject({
  mode: z.enum(['acme', 'own']),
  /** HTTP requests are redirected to HTTPS (ACME challenges excepted). */
  redirect: z.boolean(),
  /** Strict-Transport-Security on HTTPS answers. */
  hsts: z.boolean(),
  certificate: siteCertificateSchema.nullable(),
  /** The last failed issuance or renewal (null once one succeeds). */
  lastError: z.string().nullable(),
  lastAttempt: z.number().nullable(),
  /** Where the site answers over HTTPS in sandbox mode (https://127.0.0.1:PORT/). */
  url: z.string().optional(),
});

export const websiteSchema = z.strictObject({
  /** ASCII (punycode) host name; for an unmanaged vhost without ServerName, its file name. */
  domain: z.string(),
  aliases: z.array(z.string()),
  enabled: z.boolean(),
  /** false for a vhost PonIO did not write: listed read-only, never overwritten. */
  managed: z.boolean(),
  docroot: z.string().nullable(),
  adminEmail: z.string().nullable(),
  /** The vhost file on the host. */
  configFile: z.string().optional(),
  /**
   * Where the host's Apache answers (sandbox mode: the private instance on loopback, e.g.
   * http://127.0.0.1:41234/ — send `Host: <domain>`). Absent in system mode.
   */
  url: z.string().optional(),
  /** PHP-FPM of the site (its own pool); null/absent: static files only. */
  php: sitePhpSchema.nullable().optional(),
  /** The site's own system user (a site that had PHP); null/absent: www-data owns the files. */
  owner: z.string().nullable().optional(),
  /** HTTPS of the site; null/absent: HTTP only. */
  https: siteHttpsSchema.nullable().optional(),
});
export type Website = z.infer<typeof websiteSchema>;

const byDomain = request({ domain: domainSchema });

export const websitesEvents = {
  'list websites': defineEvent({
    module: 'websites',
    mutation: false,
    timeoutMs: 10_000,
    summary: 'Lists the Apache virtual hosts of the host.',
    request: request({}),
    reply: z.strictObject({
      websites: z.array(websiteSchema),
      /** Where the host's Apache answers in sandbox mode (see websiteSchema.url). */
      url: z.string().optional(),
      /** PHP versions installed on the host (php<v>-fpm); [] when PHP per site is not possible. */
      phpVersions: z.array(z.string()).optional(),
      /** Why phpVersions is empty (e.g. php-fpm is not installed). */
      phpUnavailable: z.string().optional(),
    }),
  }),
  'create website': defineEvent({
    module: 'websites',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Creates the site tree with a placeholder page, writes the vhost and enables it.',
    request: request({
      domain: domainSchema,
      aliases: z.array(domainSchema).max(50).optional(),
      adminEmail: adminEmailSchema.optional(),
      /** A PHP version installed on the host, or none (default). */
      php: phpChoiceSchema.optional(),
      phpSettings: phpSettingsSchema.optional(),
    }),
    reply: websiteSchema,
  }),
  'set website php': defineEvent({
    module: 'websites',
    mutation: true,
    timeoutMs: 120_000,
    summary:
      "Turns PHP on (its own php-fpm pool, running as the site's own user), changes its version or settings, or turns it off.",
    request: request({
      domain: domainSchema,
      php: phpChoiceSchema,
      phpSettings: phpSettingsSchema.optional(),
    }),
    reply: websiteSchema,
  }),
  'set website https': defineEvent({
    module: 'websites',
    mutation: true,
    timeoutMs: 180_000,
    summary:
      'Turns HTTPS on with a certificate from the ACME CA (renewed automatically) or an uploaded one, changes redirect/HSTS, or turns it off.',
    request: request({
      domain: domainSchema,
      https: z.enum(HTTPS_MODES),
      redirect: z.boolean().optional(),
      hsts: z.boolean().optional(),
      /** mode own: the certificate chain (leaf first), PEM. */
      certificate: pem('The certificate', 64 * 1024).optional(),
      /** mode own: its private key, PEM (never returned, never logged). */
      key: pem('The key', 16 * 1024).optional(),
    }),
    reply: websiteSchema,
    secrets: ['key'],
  }),
  'renew website certificate': defineEvent({
    module: 'websites',
    mutation: true,
    timeoutMs: 180_000,
    summary: "Renews a site's ACME certificate now (the agent also does it at two thirds of its life).",
    request: byDomain,
    reply: websiteSchema,
  }),
  'enable website': defineEvent({
    module: 'websites',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Enables a website (it is served again).',
    request: byDomain,
    reply: websiteSchema,
  }),
  'disable website': defineEvent({
    module: 'websites',
    mutation: true,
    timeoutMs: 60_000,
    summary: 'Disables a website: files are kept, the site is no longer served.',
    request: byDomain,
    reply: websiteSchema,
  }),
  'delete website': defineEvent({
    module: 'websites',
    mutation: true,
    timeoutMs: 120_000,
    summary: 'Deletes a website; its files are removed only when removeFiles is true.',
    request: request({ domain: domainSchema, removeFiles: z.boolean().optional() }),
    reply: z.strictObject({ domain: z.string(), filesRemoved: z.boolean() }),
  }),
} as const;

// The agent's router validates with what is registered: only the domains a process loaded.
registerEvents(websitesEvents);
