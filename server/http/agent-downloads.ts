import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { PanelContext } from '../context.ts';

/**
 * The agent release the panel hands to new hosts, so that enrolling a host is one line
 * (docs/install.md, docs/security.md "One-line install"):
 *
 * - `GET /agent/install.sh`: deploy/install-agent.sh of that release, with the panel URL, the
 *   panel's HTTPS key pin, the bundle's SHA-256 and the systemd units filled in, wrapped in one
 *   `{ … }` block so a cut-off download runs nothing;
 * - `GET /agent/ponio-agent.cjs`: the single-file agent bundle.
 *
 * Public (they carry no secret), rate-limited per client address, strong `ETag` (SHA-256 of
 * the body). Only these two paths: nothing is looked up from the request.
 */

/** This file is server/http/…; in the built panel, import.meta.url names <panel dir>/server/http/app.js. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface AgentRelease {
  dir: string;
  bundle: string;
  script: string;
  units: string[];
}

const UNIT_FILES = ['ponio-agent.service', 'ponio-firewall-restore.service'] as const;

const isFile = (f: string): boolean => {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
};

/**
 * Where the agent release is: `agentDir` from the config, else `agent/` next to the built panel
 * (`npm run build` copies it into dist/panel/agent), else `dist/agent` of a development checkout.
 * Null when none of them holds the bundle, the installer and its unit.
 */
export function findAgentRelease(config: { agentDir?: string | undefined }): AgentRelease | null {
  const dirs = config.agentDir
    ? [path.resolve(config.agentDir)]
    : [path.join(ROOT, 'agent'), path.join(ROOT, 'dist', 'agent')];
  for (const dir of dirs) {
    const bundle = path.join(dir, 'ponio-agent.cjs');
    const script = path.join(dir, 'install-agent.sh');
    if (!isFile(bundle) || !isFile(script) || !isFile(path.join(dir, 'ponio-agent.service'))) continue;
    return { dir, bundle, script, units: UNIT_FILES.filter((u) => isFile(path.join(dir, u))) };
  }
  return null;
}

/** curl's `--pinnedpubkey` form of a certificate's key: `sha256//` + base64(SHA-256(SPKI DER)). */
export function spkiPin(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256//${createHash('sha256').update(spki).digest('base64')}`;
}

/**
 * The certificate the panel's HTTPS port presents (server/main.ts): `tlsCert` (its first
 * certificate, the leaf) when configured, else the one from the panel CA.
 */
export function servedCertificatePem(
  config: { tlsCert?: string | undefined },
  pkiServerPem: () => string,
): string {
  if (!config.tlsCert) return pkiServerPem();
  const pem = readFileSync(config.tlsCert, 'utf8');
  const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!leaf) throw new Error(`${config.tlsCert} holds no PEM certificate`);
  return leaf[0];
}

/** The panel URLs install-agent.sh accepts for --panel (scheme, host, optional port; no path). */
const PANEL_URL = /^https:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$/;

/** publicUrl without a trailing slash when it can go into the one-line install, else null. */
export function oneLineUrl(publicUrl: string): string | null {
  const u = publicUrl.replace(/\/+$/, '');
  return PANEL_URL.test(u) ? u : null;
}

interface CachedFile {
  key: string;
  body: Buffer;
  sha256: string;
}
const fileCache = new Map<string, CachedFile>();

/** A file and its SHA-256, read again only when it changed on disk (an upgrade replaces it). */
function readCached(file: string): CachedFile {
  const st = statSync(file);
  const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
  const hit = fileCache.get(file);
  if (hit?.key === key) return hit;
  const body = readFileSync(file);
  const entry = { key, body, sha256: createHash('sha256').update(body).digest('hex') };
  fileCache.set(file, entry);
  return entry;
}

/** The bundle's SHA-256 (hex) as served. */
export function bundleSha256(release: AgentRelease): string {
  return readCached(release.bundle).sha256;
}

const UNIT_END = 'PONIO_UNIT_END';

/** Sets `NAME=""` (a whole line, exactly once) in the installer to a checked value. */
function fill(script: string, name: string, value: string, allowed: RegExp): string {
  if (!allowed.test(value)) throw new Error(`refusing to template ${name}=${JSON.stringify(value)}`);
  const line = new RegExp(`^${name}=""$`, 'gm');
  const hits = script.match(line)?.length ?? 0;
  if (hits !== 1) throw new Error(`install-agent.sh has ${hits} "${name}=\\"\\"" lines (expected one)`);
  return script.replace(line, `${name}="${value}"`);
}

/**
 * install-agent.sh as the panel serves it: the panel URL, the HTTPS key pin and the bundle's
 * SHA-256 filled in, `panel_units` writing the release's units, and the whole script in one
 * `{ … }` group (the shell parses it completely before running any of it).
 */
export function renderInstallScript(
  release: AgentRelease,
  v: { panelUrl: string; spkiPin: string; bundleSha256: string },
): string {
  let s = readFileSync(release.script, 'utf8');
  s = fill(s, 'PANEL_URL', v.panelUrl, PANEL_URL);
  s = fill(s, 'PANEL_SPKI_PIN', v.spkiPin, /^sha256\/\/[A-Za-z0-9+/]{43}=$/);
  s = fill(s, 'PANEL_BUNDLE_SHA256', v.bundleSha256, /^[0-9a-f]{64}$/);
  const units = release.units.map((u) => {
    const text = readFileSync(path.join(release.dir, u), 'utf8');
    if (text.split('\n').includes(UNIT_END)) throw new Error(`${u} contains the line ${UNIT_END}`);
    return `  cat >"$1/${u}" <<'${UNIT_END}'\n${text.endsWith('\n') ? text : `${text}\n`}${UNIT_END}\n`;
  });
  const stub = /^panel_units\(\) \{ return 1; \}$/gm;
  if ((s.match(stub)?.length ?? 0) !== 1)
    throw new Error('install-agent.sh has no "panel_units() { return 1; }" line');
  s = s.replace(stub, () => `panel_units() { # DIR: the units of this release\n${units.join('')}}`);
  const body = s.replace(/^#!.*\n/, '');
  return [
    '#!/bin/sh',
    `# Served by the PonIO panel at ${v.panelUrl}/agent/install.sh (docs/install.md). The whole`,
    '# script is one { } group: the shell reads all of it before running any of it.',
    '{',
    body.trimEnd(),
    '}',
    '',
  ].join('\n');
}

function sendFile(req: Request, res: Response, body: Buffer | string, sha256hex: string, type: string): void {
  const etag = `"sha256-${Buffer.from(sha256hex, 'hex').toString('base64url')}"`;
  res.set({ etag, 'cache-control': 'no-cache', 'x-content-sha256': sha256hex });
  res.type(type);
  const inm = req.get('if-none-match');
  if (inm && inm.split(',').some((t) => t.trim() === etag)) {
    res.status(304).end();
    return;
  }
  res.send(body);
}

const NOT_BUILT =
  'This panel has no agent release to serve (build it with `npm run build`, or set agentDir in the panel config). Install the agent from dist/agent instead (docs/install.md).\n';

/** GET /agent/install.sh and GET /agent/ponio-agent.cjs (see the top of this file). */
export function agentDownloadsRouter(ctx: PanelContext): Router {
  const r = Router();
  const limited = rateLimit({
    windowMs: 60_000,
    limit: 120,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, res) => {
      res
        .status(429)
        .type('text/plain')
        .send('Too many agent downloads from this address; wait a minute and try again.\n');
    },
  });
  let pin: string | undefined;
  // The HTTPS certificate is read once at start (server/main.ts); so is its pin.
  const panelPin = (): string =>
    (pin ??= spkiPin(servedCertificatePem(ctx.config, () => ctx.pki.serverTls().certPem)));
  const release = (res: Response): AgentRelease | null => {
    const rel = findAgentRelease(ctx.config);
    if (!rel) res.status(404).type('text/plain').set('cache-control', 'no-store').send(NOT_BUILT);
    return rel;
  };

  r.get('/agent/install.sh', limited, (req, res) => {
    const rel = release(res);
    if (!rel) return;
    const panelUrl = oneLineUrl(ctx.publicUrl());
    if (!panelUrl) {
      res
        .status(404)
        .type('text/plain')
        .send(
          'The panel publicUrl has a path; the one-line install needs https://HOST[:PORT] (docs/install.md).\n',
        );
      return;
    }
    const script = renderInstallScript(rel, {
      panelUrl,
      spkiPin: panelPin(),
      bundleSha256: bundleSha256(rel),
    });
    sendFile(
      req,
      res,
      script,
      createHash('sha256').update(script).digest('hex'),
      'text/x-shellscript; charset=utf-8',
    );
  });

  r.get('/agent/ponio-agent.cjs', limited, (req, res) => {
    const rel = release(res);
    if (!rel) return;
    const f = readCached(rel.bundle);
    sendFile(req, res, f.body, f.sha256, 'text/javascript; charset=utf-8');
  });
  // Nothing else under /agent/ (other names, methods, encoded paths): a plain 404, no login page.
  r.use('/agent', limited, (_req, res) => {
    res
      .status(404)
      .type('text/plain')
      .send('Only GET /agent/install.sh and GET /agent/ponio-agent.cjs are served here.\n');
  });
  return r;
}
