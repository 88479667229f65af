import { z } from 'zod';
import { phpSettingsSchema } from '../../../shared/protocol/events/websites.ts';

/**
 * Apache virtual host files: what PonIO writes and how it reads back what is on the host.
 * Pure functions (no I/O), unit-tested in test/unit/websites-vhost.test.ts.
 */

/** First line of every vhost PonIO writes. A file without it is never changed by PonIO. */
export const MANAGED_HEADER = '# Managed by PonIO (ponio-managed v1). Edits are overwritten; use the panel.';
const META_PREFIX = '# ponio-meta: ';

const metaSchema = z.strictObject({
  domain: z.string(),
  aliases: z.array(z.string()),
  adminEmail: z.string().nullable(),
  docroot: z.string(),
  /** Absent in vhosts written before PHP per site (issue 20): no PHP, www-data's files. */
  php: z
    .strictObject({ version: z.string(), settings: phpSettingsSchema, socket: z.string() })
    .nullable()
    .optional(),
  /** The site's own system user (it keeps it once PHP was on; see site-user.ts). */
  owner: z.string().nullable().optional(),
  /** Absent: HTTP only. */
  https: z
    .strictObject({
      mode: z.enum(['acme', 'own']),
      redirect: z.boolean(),
      hsts: z.boolean(),
      /** The certificate's files are cert-<id>.pem / key-<id>.pem: a new pair is a new id. */
      id: z.string().regex(/^[0-9a-f]{8,32}$/),
    })
    .optional(),
});
export type VhostMeta = z.infer<typeof metaSchema>;

export interface VhostSpec {
  domain: string;
  aliases: readonly string[];
  adminEmail: string | null;
  /** `<wwwRoot>/<domain>/public_html` */
  docroot: string;
  /** `<wwwRoot>/<domain>/logs` */
  logDir: string;
  /** The VirtualHost address, e.g. `*:80` (system) or `*:${PONIO_HTTP_PORT}` (sandbox). */
  listen: string;
  /** PHP-FPM: `.php` requests go to this pool's socket through proxy_fcgi. */
  php?: VhostMeta['php'];
  owner?: string | null;
  /** Served at /.well-known/acme-challenge/ (HTTP-01 tokens the agent writes; acme.ts). */
  challengeDir?: string;
  https?: {
    mode: 'acme' | 'own';
    redirect: boolean;
    hsts: boolean;
    id: string;
    certFile: string;
    keyFile: string;
    /** The HTTPS VirtualHost address: `*:443`, or `*:${PONIO_HTTPS_PORT}` in the sandbox. */
    listen: string;
    /** `:${PONIO_HTTPS_PORT}` in the sandbox, '' on 443: what a redirect appends to the name. */
    portSuffix: string;
  };
  /** Test hook only: adds a directive Apache refuses, to prove the rollback path. */
  corrupt?: boolean;
}

// Everything interpolated into a vhost is validated upstream (domains by validateDomain, e-mail by
// adminEmailSchema, paths by the adapter). This is the last line of defence: a value that could
// end a quoted string, start a new line or expand an Apache variable never reaches the file.
const SAFE_TOKEN = /^[A-Za-z0-9._%+@:*/-]+$/;
const SAFE_LISTEN = /^(\*|[0-9.]+|\[[0-9a-fA-F:]+\]):([0-9]{1,5}|\$\{[A-Z_]+\})$/;

function safe(value: string, what: string): string {
  if (!SAFE_TOKEN.test(value)) throw new Error(`unsafe ${what} for a vhost: ${JSON.stringify(value)}`);
  return value;
}

/** Renders the vhost file PonIO owns for one site. */
export function renderVhost(spec: VhostSpec): string {
  if (!SAFE_LISTEN.test(spec.listen)) throw new Error(`unsafe vhost address ${JSON.stringify(spec.listen)}`);
  const domain = safe(spec.domain, 'domain');
  const aliases = spec.aliases.map((a) => safe(a, 'alias'));
  const docroot = safe(spec.docroot, 'docroot');
  const logDir = safe(spec.logDir, 'log directory');
  const meta: VhostMeta = {
    domain,
    aliases,
    adminEmail: spec.adminEmail === null ? null : safe(spec.adminEmail, 'admin e-mail'),
    docroot,
    // Only when set: a site without PHP keeps the metadata line it always had.
    ...(spec.php
      ? {
          php: {
            version: safe(spec.php.version, 'PHP version'),
            settings: spec.php.settings,
            socket: safe(spec.php.socket, 'socket'),
          },
        }
      : {}),
    ...(spec.owner !== undefined && spec.owner !== null ? { owner: safe(spec.owner, 'owner') } : {}),
    ...(spec.https
      ? {
          https: {
            mode: spec.https.mode,
            redirect: spec.https.redirect,
            hsts: spec.https.hsts,
            id: safe(spec.https.id, 'certificate id'),
          },
        }
      : {}),
  };
  const tls = spec.https;
  if (tls && !SAFE_LISTEN.test(tls.listen))
    throw new Error(`unsafe vhost address ${JSON.stringify(tls.listen)}`);
  if (tls && !/^(|:[0-9]{1,5}|:\$\{[A-Z_]+\})$/.test(tls.portSuffix)) throw new Error('unsafe HTTPS port');
  const challenge =
    spec.challengeDir !== undefined
      ? [
          `    Alias /.well-known/acme-challenge/ "${safe(spec.challengeDir, 'challenge dir')}/"`,
          `    <Directory "${spec.challengeDir}">`,
          '        Options None',
          '        AllowOverride None',
          '        Require all granted',
          '    </Directory>',
        ]
      : [];
  const php = meta.php
    ? [
        '    DirectoryIndex index.php index.html',
        '    <FilesMatch "\\.php$">',
        // The pool's own name after fcgi:// keeps the sites' proxy workers apart.
        `        SetHandler "proxy:unix:${meta.php.socket}|fcgi://${safe(meta.owner ?? 'php', 'owner')}/"`,
        '    </FilesMatch>',
      ]
    : meta.owner !== undefined && meta.owner !== null
      ? // PHP was on and is off now: its scripts must not be sent as text (their source).
        ['    <FilesMatch "\\.php$">', '        Require all denied', '    </FilesMatch>']
      : [];
  const body = [
    `    ServerName ${domain}`,
    ...(aliases.length > 0 ? [`    ServerAlias ${aliases.join(' ')}`] : []),
    ...(meta.adminEmail !== null ? [`    ServerAdmin ${meta.adminEmail}`] : []),
    `    DocumentRoot "${docroot}"`,
    `    <Directory "${docroot}">`,
    '        Options -Indexes +SymLinksIfOwnerMatch',
    '        AllowOverride FileInfo AuthConfig Limit Indexes',
    '        Require all granted',
    '    </Directory>',
    ...php,
    `    ErrorLog "${logDir}/error.log"`,
    `    CustomLog "${logDir}/access.log" combined`,
  ];
  const lines = [
    MANAGED_HEADER,
    `${META_PREFIX}${JSON.stringify(meta)}`,
    `<VirtualHost ${spec.listen}>`,
    ...body.slice(0, aliases.length > 0 ? 2 : 1),
    ...challenge,
    // Everything but the ACME challenges goes to HTTPS (301).
    ...(tls?.redirect === true
      ? [
          `    RedirectMatch 301 "^/(?!\\.well-known/acme-challenge/)(.*)$" "https://${domain}${tls.portSuffix}/$1"`,
        ]
      : []),
    ...body.slice(aliases.length > 0 ? 2 : 1),
    ...(spec.corrupt === true ? ['    PonioDeliberatelyInvalidDirective on'] : []),
    '</VirtualHost>',
    ...(tls
      ? [
          `<VirtualHost ${tls.listen}>`,
          ...body,
          '    SSLEngine on',
          `    SSLCertificateFile "${safe(tls.certFile, 'certificate file')}"`,
          `    SSLCertificateKeyFile "${safe(tls.keyFile, 'key file')}"`,
          ...(tls.hsts ? ['    Header always set Strict-Transport-Security "max-age=31536000"'] : []),
          '</VirtualHost>',
        ]
      : []),
    '',
  ];
  return lines.join('\n');
}

export interface ParsedVhost {
  managed: boolean;
  /** ServerName (lower-cased), or null when the file has none. */
  serverName: string | null;
  aliases: string[];
  docroot: string | null;
  adminEmail: string | null;
  php?: VhostMeta['php'];
  owner?: string | null;
  https?: VhostMeta['https'];
}

const unquote = (s: string): string => s.replace(/^"(.*)"$/, '$1');

/**
 * Reads a vhost file. PonIO's own files are recognised by the header and their metadata line
 * (which must name the file's domain); anything else is parsed loosely for display and marked
 * unmanaged. Only the first VirtualHost block of a file is described.
 */
export function parseVhost(text: string, expectedDomain: string | null): ParsedVhost {
  const lines = text.split(/\r?\n/);
  if (lines[0] === MANAGED_HEADER && lines[1]?.startsWith(META_PREFIX)) {
    try {
      const meta = metaSchema.parse(JSON.parse(lines[1].slice(META_PREFIX.length)));
      if (expectedDomain === null || meta.domain === expectedDomain)
        return {
          managed: true,
          serverName: meta.domain,
          aliases: meta.aliases,
          docroot: meta.docroot,
          adminEmail: meta.adminEmail,
          ...(meta.php ? { php: meta.php } : {}),
          ...(meta.owner !== undefined && meta.owner !== null ? { owner: meta.owner } : {}),
          ...(meta.https ? { https: meta.https } : {}),
        };
    } catch {
      /* a damaged header: treat the file as someone else's */
    }
  }
  let serverName: string | null = null;
  const aliases: string[] = [];
  let docroot: string | null = null;
  let adminEmail: string | null = null;
  let blocks = 0;
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/^<VirtualHost\b/i.test(line)) blocks++;
    if (blocks > 1) break;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const key = (m[1] ?? '').toLowerCase();
    const value = (m[2] ?? '').trim();
    if (key === 'servername' && serverName === null)
      serverName =
        unquote(value.split(/\s+/)[0] ?? '')
          .toLowerCase()
          .replace(/:\d+$/, '') || null;
    else if (key === 'serveralias') aliases.push(...value.split(/\s+/).map((a) => a.toLowerCase()));
    else if (key === 'documentroot' && docroot === null) docroot = unquote(value);
    else if (key === 'serveradmin' && adminEmail === null) adminEmail = value;
  }
  return { managed: false, serverName, aliases, docroot, adminEmail };
}

/** The placeholder page of a new site (the domain is validated ASCII; escaped all the same). */
export function placeholderPage(domain: string, displayName: string): string {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${esc(displayName)}</title></head>
<body>
<h1>${esc(displayName)}</h1>
<p>This site is hosted with PonIO and has no content yet.</p>
<!-- ponio-placeholder ${esc(domain)} -->
</body>
</html>
`;
}
