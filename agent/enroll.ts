import https from 'node:https';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { hostUri, PANEL_TLS_NAME } from '../shared/pki/identity.ts';
import { verifyPeerCertificate } from '../shared/pki/verify.ts';
import { atomicWrite, readIfExists } from './os/files.ts';
import { sandboxLayout, systemLayout } from './os/layout.ts';

/** An enrollment problem: printed as one line, nothing written. */
export class EnrollError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnrollError';
  }
}

export interface EnrollOptions {
  /** https://PANEL:PORT */
  panel: string;
  token: string;
  /** sha256:HEX of the panel CA certificate (DER). */
  caPin: string;
  /** Sandbox directory; absent = system mode (/etc/ponio-agent). */
  sandbox?: string;
  /** Listen address to put in the config (default: 0.0.0.0:<port the panel expects>). */
  listen?: string;
  /** Enroll again even when a valid certificate from this CA is already installed. */
  force?: boolean;
  timeoutMs?: number;
}

export interface EnrollResult {
  hostId: string;
  configDir: string;
  configFile: string;
  notAfter: Date;
  alreadyEnrolled: boolean;
  nextStep: string;
}

const PIN = /^sha256:([0-9a-fA-F]{64})$/;
const TOKEN = /^[A-Za-z0-9_-]{20,200}$/;
const MAX_BODY = 64 * 1024;

const sha256Hex = (der: Buffer): string => createHash('sha256').update(der).digest('hex');

function parsePanelUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new EnrollError(
      `--panel ${JSON.stringify(raw.slice(0, 100))} is not a URL (e.g. https://panel.example:8443).`,
    );
  }
  if (u.protocol !== 'https:') throw new EnrollError('--panel must be an https:// URL.');
  if (u.username || u.password || u.search || u.hash)
    throw new EnrollError('--panel must be just https://HOST:PORT (no credentials, query or fragment).');
  return u;
}

interface HttpResult {
  status: number;
  body: string;
}

/** A peer certificate `enroll` does not accept as the panel (see panelTls). */
class NotThePanel extends Error {
  readonly code = 'PONIO_NOT_THE_PANEL';
}

/** How the TLS peer is checked: not at all (CA fetch), as the panel identity, or by public roots. */
type PeerCheck = { kind: 'none' } | { kind: 'panel'; caPem: string } | { kind: 'public' };

/**
 * TLS options for a peer check. `panel`: ask for PANEL_TLS_NAME; the peer must present a
 * certificate from the pinned CA carrying urn:ponio:panel and serverAuth, and no host identity
 * (verifyPeerCertificate) — never a hostname match, so no certificate an operator can obtain
 * (host certificates name only urn:ponio:host:<id>) passes. `public`: a panel behind a TLS-
 * terminating proxy with a publicly trusted certificate: Node's bundled public roots only (never
 * the pinned CA) plus the usual hostname check, and still no host identity.
 */
function peerTls(check: PeerCheck): https.RequestOptions {
  if (check.kind === 'none') return { rejectUnauthorized: false };
  const refuseHost = (cert: tls.PeerCertificate): Error | undefined =>
    /URI:urn:ponio:host:/.test(cert.subjectaltname ?? '')
      ? new NotThePanel('it presented a host certificate (urn:ponio:host), not the panel')
      : undefined;
  if (check.kind === 'public')
    return {
      ca: [...tls.rootCertificates],
      rejectUnauthorized: true,
      checkServerIdentity: (host, cert) => refuseHost(cert) ?? tls.checkServerIdentity(host, cert),
    };
  return {
    ca: [check.caPem],
    servername: PANEL_TLS_NAME,
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => {
      const r = verifyPeerCertificate(cert.raw, {
        caPem: check.caPem,
        expect: { kind: 'panel' },
        purpose: 'serverAuth',
      });
      return r.ok ? undefined : new NotThePanel(r.reason);
    },
  };
}

function request(
  url: URL,
  opts: { method: 'GET' | 'POST'; body?: string; peer: PeerCheck; timeoutMs: number },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: opts.method,
        headers: {
          accept: 'application/json, application/x-pem-file',
          ...(opts.body !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(opts.body) }
            : {}),
        },
        // Before the pin check nothing secret is sent and the CA is checked by its fingerprint;
        // afterwards the panel must prove it holds the panel certificate from that very CA.
        ...peerTls(opts.peer),
        timeout: opts.timeoutMs,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          if (body.length > MAX_BODY) req.destroy(new Error('the panel sent too much data'));
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('the panel did not answer in time')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

function describeNetError(e: unknown, panel: URL): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ECONNREFUSED') return `cannot reach the panel at ${panel.origin}: connection refused`;
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN')
    return `cannot reach the panel at ${panel.origin}: unknown host`;
  if (isCertError(err))
    return `the server at ${panel.origin} is not the panel: it did not present the panel certificate (urn:ponio:panel) from the pinned CA (${err.message}); nothing was sent — use the exact --panel URL shown by the panel`;
  return `cannot reach the panel at ${panel.origin}: ${err.message}`;
}

const isCertError = (e: unknown): boolean =>
  e instanceof NotThePanel ||
  /CERT|ALTNAME|SELF_SIGNED|UNABLE_TO/.test((e as NodeJS.ErrnoException).code ?? '');

/** Parses a JSON error body of the panel ({ error: { message } }) into one sentence. */
function panelError(r: HttpResult): string {
  try {
    const j = JSON.parse(r.body) as { error?: { message?: unknown } };
    if (typeof j.error?.message === 'string') return j.error.message.slice(0, 500);
  } catch {
    /* not JSON */
  }
  return `HTTP ${r.status}`;
}

interface ExistingEnrollment {
  hostId: string;
  notAfter: Date;
}

/** A valid certificate from the pinned CA already installed in the config dir, or null. */
async function existingEnrollment(
  files: { cert: string; key: string; ca: string },
  pinHex: string,
): Promise<ExistingEnrollment | null> {
  const [certPem, keyPem, caPem] = await Promise.all([
    readIfExists(files.cert),
    readIfExists(files.key),
    readIfExists(files.ca),
  ]);
  if (!certPem || !keyPem || !caPem) return null;
  try {
    if (sha256Hex(new X509Certificate(caPem).raw) !== pinHex) return null;
    const cert = new X509Certificate(certPem);
    const uri = (cert.subjectAltName ?? '').match(/URI:urn:ponio:host:([a-z0-9-]+)/)?.[1];
    if (!uri) return null;
    const r = verifyPeerCertificate(cert, {
      caPem,
      expect: { kind: 'host', hostId: uri },
      purpose: 'serverAuth', // what the agent serves the panel with
    });
    if (!r.ok) return null;
    const certKey = cert.publicKey.export({ type: 'spki', format: 'der' });
    const ownKey = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
    if (!certKey.equals(ownKey)) return null;
    return { hostId: uri, notAfter: new Date(cert.validTo) };
  } catch {
    return null;
  }
}

/** The wss:// URLs a reverse-mode enrollment reply names, or null in forward mode. */
function reverseConnect(reply: { mode?: unknown; connect?: unknown }): string[] | null {
  if (reply.mode !== 'reverse') return null;
  const urls = Array.isArray(reply.connect) ? reply.connect : [];
  if (urls.length === 0 || !urls.every((u) => typeof u === 'string' && /^wss:\/\/[^\s/?#@]+\/?$/.test(u)))
    throw new EnrollError(
      'the panel enrolled this host in reverse mode but sent no usable wss:// URL to dial.',
    );
  return urls as string[];
}

/**
 * `ponio-agent enroll` (design §3): fetches the panel's CA and compares its SHA-256 fingerprint
 * with the pin BEFORE sending anything; generates the key here (it never leaves the host);
 * sends CSR + token over TLS verified against the pinned CA; checks the certificate it gets back
 * (pinned CA, its own key, a host identity); then writes key (0600), certificate, CA and
 * config.json atomically. A failure at any step leaves the config dir as it was.
 */
export async function enroll(opts: EnrollOptions): Promise<EnrollResult> {
  const panel = parsePanelUrl(opts.panel);
  const pin = PIN.exec(opts.caPin.trim());
  if (!pin?.[1])
    throw new EnrollError('--ca-pin must look like sha256:<64 hex digits>, as shown by the panel.');
  const pinHex = pin[1].toLowerCase();
  if (!TOKEN.test(opts.token))
    throw new EnrollError('--token is not a PonIO join token (copy it exactly from the panel).');
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const layout = opts.sandbox ? sandboxLayout(opts.sandbox) : systemLayout();
  const configDir = layout.configDir;
  const files = {
    cert: path.join(configDir, 'agent.crt'),
    key: path.join(configDir, 'agent.key'),
    ca: path.join(configDir, 'ca.crt'),
    config: path.join(configDir, 'config.json'),
  };
  const nextStep =
    layout.mode === 'sandbox'
      ? `ponio-agent serve --config ${files.config}`
      : 'systemctl enable --now ponio-agent';

  if (!opts.force) {
    const have = await existingEnrollment(files, pinHex);
    if (have)
      return {
        hostId: have.hostId,
        configDir,
        configFile: files.config,
        notAfter: have.notAfter,
        alreadyEnrolled: true,
        nextStep,
      };
  }

  // 1. The CA, fetched without sending anything but the request line, checked against the pin.
  const caUrl = new URL('/enroll/ca', panel);
  let caRes: HttpResult;
  try {
    caRes = await request(caUrl, { method: 'GET', peer: { kind: 'none' }, timeoutMs });
  } catch (e) {
    throw new EnrollError(describeNetError(e, panel));
  }
  if (caRes.status !== 200) throw new EnrollError(`the panel did not give its CA: ${panelError(caRes)}`);
  let caPem: string;
  try {
    const ca = new X509Certificate(caRes.body);
    if (!ca.ca) throw new Error('not a CA');
    caPem = caRes.body;
    const got = sha256Hex(ca.raw);
    if (got !== pinHex)
      throw new EnrollError(
        `the panel's CA fingerprint sha256:${got} does not match --ca-pin sha256:${pinHex}; refusing to enroll (nothing was sent). Check the URL and the pin shown by the panel.`,
      );
  } catch (e) {
    if (e instanceof EnrollError) throw e;
    throw new EnrollError('the panel sent something that is not a CA certificate; refusing to enroll.');
  }

  // 2. Our own key and CSR (the private key never leaves this host).
  const { createCsr } = await import('../shared/pki/csr.ts');
  const { csrPem, keyPem } = await createCsr(os.hostname());

  // 3. CSR + token, only to a peer that proves it is the panel: the panel certificate from the
  //    pinned CA (asked for by SNI), or — a panel behind a TLS-terminating proxy — a publicly
  //    trusted certificate for the --panel name. The token is never sent to anything else.
  const body = JSON.stringify({ token: opts.token, csr: csrPem });
  const post = (peer: PeerCheck): Promise<HttpResult> =>
    request(new URL('/enroll', panel), { method: 'POST', body, peer, timeoutMs });
  let res: HttpResult;
  try {
    res = await post({ kind: 'panel', caPem });
  } catch (e) {
    if (!isCertError(e)) throw new EnrollError(describeNetError(e, panel));
    try {
      res = await post({ kind: 'public' });
    } catch {
      throw new EnrollError(describeNetError(e, panel));
    }
  }
  if (res.status !== 200 && res.status !== 201)
    throw new EnrollError(`the panel refused the enrollment: ${panelError(res)}`);
  let reply: {
    hostId?: unknown;
    certificate?: unknown;
    ca?: unknown;
    port?: unknown;
    mode?: unknown;
    connect?: unknown;
  };
  try {
    reply = (JSON.parse(res.body) as { data?: typeof reply }).data ?? {};
  } catch {
    throw new EnrollError('the panel sent an enrollment reply that is not JSON.');
  }
  const { hostId, certificate, ca } = reply;
  if (typeof hostId !== 'string' || typeof certificate !== 'string' || typeof ca !== 'string')
    throw new EnrollError('the panel sent an incomplete enrollment reply.');
  if (sha256Hex(new X509Certificate(ca).raw) !== pinHex)
    throw new EnrollError('the panel returned a CA that does not match --ca-pin; nothing was written.');
  const check = verifyPeerCertificate(certificate, {
    caPem,
    expect: { kind: 'host', hostId },
    purpose: 'serverAuth', // what the agent will serve the panel with
  });
  if (!check.ok) throw new EnrollError(`the certificate from the panel is not usable: ${check.reason}.`);
  const cert = new X509Certificate(certificate);
  if (
    !cert.publicKey
      .export({ type: 'spki', format: 'der' })
      .equals(createPublicKey(keyPem).export({ type: 'spki', format: 'der' }))
  )
    throw new EnrollError('the certificate from the panel is not for the key generated here.');
  if (!check.uris.includes(hostUri(hostId))) throw new EnrollError('the certificate has no host identity.');

  // 4. Write: config (merged with an existing one), CA, key, certificate. Each file is replaced
  //    atomically; the key is 0600 and the directory 0700.
  await fsp.mkdir(configDir, { recursive: true, mode: 0o700 });
  await fsp.chmod(configDir, 0o700);
  let config: Record<string, unknown> = {};
  const existing = await readIfExists(files.config);
  if (existing) {
    try {
      const parsed: unknown = JSON.parse(existing);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        config = parsed as Record<string, unknown>;
    } catch {
      throw new EnrollError(`${files.config} exists but is not JSON; fix or remove it and run enroll again.`);
    }
  }
  const port = typeof reply.port === 'number' && Number.isInteger(reply.port) ? reply.port : 7443;
  const connect = reverseConnect(reply);
  if (connect) {
    // Reverse mode: the agent dials the panel and listens on no port.
    config.connect = connect;
    delete config.listen;
  } else {
    delete config.connect;
    if (opts.listen !== undefined) config.listen = opts.listen;
    else if (typeof config.listen !== 'string') config.listen = `0.0.0.0:${port}`;
  }
  if (layout.mode === 'sandbox') config.sandbox = layout.root;
  delete config.cert;
  delete config.key;
  delete config.ca;
  await atomicWrite(files.config, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await atomicWrite(files.ca, caPem, { mode: 0o644 });
  await atomicWrite(files.key, keyPem, { mode: 0o600 });
  await atomicWrite(files.cert, certificate, { mode: 0o644 });
  return {
    hostId,
    configDir,
    configFile: files.config,
    notAfter: new Date(cert.validTo),
    alreadyEnrolled: false,
    nextStep,
  };
}
