import { createHash } from 'node:crypto';
import { z } from 'zod';
import { phpSettingsSchema, type PhpSettings } from '../../../shared/protocol/events/websites.ts';

/**
 * The php-fpm pool file PonIO writes for one site, and the name of the site's own system user.
 * Pure functions (no I/O), unit-tested in test/unit/websites-php-pool.test.ts.
 */

export const POOL_HEADER = '; Managed by PonIO (ponio-managed v1). Edits are overwritten; use the panel.';
const META_PREFIX = '; ponio-meta: ';

/** Every user PonIO creates for a site starts with this (and says so in its GECOS field). */
export const SITE_USER_PREFIX = 'ponio-';

/**
 * The system user (and pool) name of a site: `ponio-` + up to 16 characters of the domain (dots
 * become dashes) + `-` + 6 hex digits of its hash, at most 29 characters (useradd's limit is 32),
 * so two domains with the same first characters still get different users.
 */
export function siteUserName(domain: string): string {
  const slug = domain
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 16)
    .replace(/-+$/, '');
  const hash = createHash('sha256').update(domain).digest('hex').slice(0, 6);
  return `${SITE_USER_PREFIX}${slug}-${hash}`;
}

/** The GECOS field of a site's user: how PonIO recognises a user it created. */
export const siteUserComment = (domain: string): string => `PonIO site ${domain}`;

export interface PoolSpec {
  domain: string;
  version: string;
  user: string;
  /** Apache's user: the socket belongs to it (mode 0660). */
  socketOwner: string;
  socket: string;
  siteDir: string;
  docroot: string;
  tmpDir: string;
  settings: PhpSettings;
  /** Test hook only: a directive php-fpm refuses, to prove the rollback path. */
  corrupt?: boolean;
}

const metaSchema = z.strictObject({
  domain: z.string(),
  version: z.string(),
  user: z.string(),
  socket: z.string(),
  settings: phpSettingsSchema,
});
export type PoolMeta = z.infer<typeof metaSchema>;

// Last line of defence, as in vhost.ts: nothing interpolated may end a line or a value.
const SAFE = /^[A-Za-z0-9._@+/-]+$/;
function safe(v: string, what: string): string {
  if (!SAFE.test(v)) throw new Error(`unsafe ${what} for a php-fpm pool: ${JSON.stringify(v)}`);
  return v;
}

export function renderPool(spec: PoolSpec): string {
  const user = safe(spec.user, 'user');
  const s = phpSettingsSchema.parse(spec.settings);
  const meta: PoolMeta = {
    domain: safe(spec.domain, 'domain'),
    version: safe(spec.version, 'version'),
    user,
    socket: safe(spec.socket, 'socket'),
    settings: s,
  };
  const docroot = safe(spec.docroot, 'docroot');
  const tmp = safe(spec.tmpDir, 'tmp dir');
  const asRoot = process.getuid?.() === 0;
  return [
    POOL_HEADER,
    `${META_PREFIX}${JSON.stringify(meta)}`,
    `[${user}]`,
    // Without root, php-fpm cannot switch users: the pool then runs as the agent's own user.
    ...(asRoot ? [`user = ${user}`, `group = ${user}`] : []),
    `listen = ${meta.socket}`,
    ...(asRoot ? [`listen.owner = ${safe(spec.socketOwner, 'socket owner')}`] : []),
    ...(asRoot ? [`listen.group = ${safe(spec.socketOwner, 'socket owner')}`] : []),
    'listen.mode = 0660',
    'pm = ondemand',
    `pm.max_children = ${s.maxChildren ?? 5}`,
    'pm.process_idle_timeout = 20s',
    'pm.max_requests = 500',
    'security.limit_extensions = .php',
    'clear_env = yes',
    // The site's PHP sees its own tree only (docroot + its tmp); admin values cannot be changed by
    // ini_set() or .user.ini.
    `php_admin_value[open_basedir] = ${docroot}/:${tmp}/`,
    `php_admin_value[upload_tmp_dir] = ${tmp}`,
    `php_admin_value[sys_temp_dir] = ${tmp}`,
    `php_admin_value[session.save_path] = ${tmp}`,
    `php_admin_value[memory_limit] = ${s.memoryLimitMb ?? 128}M`,
    `php_admin_value[upload_max_filesize] = ${s.uploadMaxMb ?? 16}M`,
    `php_admin_value[post_max_size] = ${s.uploadMaxMb ?? 16}M`,
    `php_admin_value[max_execution_time] = ${s.maxExecutionSeconds ?? 30}`,
    `php_admin_flag[display_errors] = ${s.displayErrors === true ? 'on' : 'off'}`,
    'php_admin_flag[allow_url_include] = off',
    'php_admin_flag[expose_php] = off',
    ...(spec.corrupt === true ? ['ponio_deliberately_invalid_entry = 1'] : []),
    '',
  ].join('\n');
}

/** Reads the metadata line of a pool file PonIO wrote; null for anything else. */
export function parsePool(text: string): PoolMeta | null {
  const lines = text.split('\n');
  if (lines[0] !== POOL_HEADER || !lines[1]?.startsWith(META_PREFIX)) return null;
  try {
    return metaSchema.parse(JSON.parse(lines[1].slice(META_PREFIX.length)));
  } catch {
    return null;
  }
}
