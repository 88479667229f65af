import { X509Certificate } from 'node:crypto';
import { PANEL_URI, HOST_URI_PREFIX, hostUri } from './identity.ts';
import { normaliseSerial } from './serial.ts';

export type PeerExpectation = { kind: 'panel' } | { kind: 'host'; hostId: string };

/** The TLS role the peer's certificate is checked for: its extended key usage must name it. */
export type KeyPurpose = 'serverAuth' | 'clientAuth';

export const PURPOSE_OID: Record<KeyPurpose, string> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/**
 * The purpose each identity is used for on the link: the panel is the TLS client of the
 * agents (clientAuth), an agent is the TLS server the panel connects to (serverAuth).
 */
export const PEER_PURPOSE = { panel: 'clientAuth', host: 'serverAuth' } as const satisfies Record<
  PeerExpectation['kind'],
  KeyPurpose
>;

export interface VerifyOptions {
  caPem: string;
  expect: PeerExpectation;
  /** The extended key usage the certificate must carry; default PEER_PURPOSE[expect.kind]. */
  purpose?: KeyPurpose;
  /** Revoked serial numbers (normalised upper-case hex). */
  revoked?: ReadonlySet<string>;
  now?: Date;
}

export type VerifyResult = { ok: true; serial: string; uris: string[] } | { ok: false; reason: string };

/** The URIs in a certificate's subjectAltName. */
export function sanUris(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  return san
    .split(/,\s*/)
    .filter((e) => e.startsWith('URI:'))
    .map((e) => e.slice(4));
}

// The pinned CA is parsed once per PEM, not on every handshake (~0.4 ms each). One entry: a
// process trusts one CA at a time (a rotated CA simply replaces it).
let caCache: { pem: string; cert: X509Certificate } | null = null;
function parseCa(pem: string): X509Certificate {
  if (caCache?.pem !== pem) caCache = { pem, cert: new X509Certificate(pem) };
  return caCache.cert;
}

/**
 * The extended key usage OIDs of a certificate, or null without that extension. Node reads them
 * from the certificate it already parsed (OpenSSL), at no cost per handshake; @types/node types
 * the property as always present, but it is undefined when the extension is absent.
 */
export function extendedKeyUsages(cert: X509Certificate): string[] | null {
  const usages: string[] | undefined = cert.keyUsage;
  return usages ?? null;
}

/**
 * Checks a peer certificate against design §3: signed by the pinned CA, within its validity,
 * not revoked, with the extended key usage of its role (panel: clientAuth, agent: serverAuth)
 * and carrying the expected identity URI. Used on top of TLS's own chain check, so a
 * mistake in TLS options cannot open the door alone.
 */
export function verifyPeerCertificate(
  cert: X509Certificate | string | Buffer,
  opts: VerifyOptions,
): VerifyResult {
  let peer: X509Certificate;
  let ca: X509Certificate;
  try {
    peer = typeof cert === 'string' || Buffer.isBuffer(cert) ? new X509Certificate(cert) : cert;
    ca = parseCa(opts.caPem);
  } catch {
    return { ok: false, reason: 'certificate could not be parsed' };
  }
  if (!peer.checkIssued(ca) || !peer.verify(ca.publicKey))
    return { ok: false, reason: 'certificate is not signed by the pinned CA' };
  const now = (opts.now ?? new Date()).getTime();
  if (now < new Date(peer.validFrom).getTime()) return { ok: false, reason: 'certificate is not yet valid' };
  if (now > new Date(peer.validTo).getTime()) return { ok: false, reason: 'certificate has expired' };
  const serial = normaliseSerial(peer.serialNumber);
  if (opts.revoked?.has(serial)) return { ok: false, reason: `certificate ${serial} is revoked` };
  const purpose = opts.purpose ?? PEER_PURPOSE[opts.expect.kind];
  const ekus = extendedKeyUsages(peer);
  if (!ekus) return { ok: false, reason: `certificate has no extended key usage (${purpose} is required)` };
  if (!ekus.includes(PURPOSE_OID[purpose]))
    return { ok: false, reason: `certificate's extended key usage does not allow ${purpose}` };
  const uris = sanUris(peer);
  if (opts.expect.kind === 'panel') {
    if (!uris.includes(PANEL_URI)) return { ok: false, reason: 'certificate is not a panel certificate' };
    if (uris.some((u) => u.startsWith(HOST_URI_PREFIX)))
      return { ok: false, reason: 'certificate is a host certificate, not a panel certificate' };
  } else {
    const want = hostUri(opts.expect.hostId);
    if (!uris.includes(want))
      return {
        ok: false,
        reason: `certificate identifies ${uris.join(', ') || 'no PonIO identity'}, expected ${want}`,
      };
  }
  return { ok: true, serial, uris };
}
