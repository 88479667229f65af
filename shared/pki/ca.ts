import { randomBytes, createHash, X509Certificate as NodeCert } from 'node:crypto';
import { x509, generateKeyPair, importKeyPair, SIGN_ALG } from './crypto.ts';
import { PANEL_URI, hostUri } from './identity.ts';

const DAY = 86_400_000;

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface IssuedCert {
  certPem: string;
  keyPem: string;
  serial: string;
  notAfter: Date;
}

/** A random positive serial number (hex, upper case, as node's X509Certificate prints it). */
export function newSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x10; // positive, no leading zero byte
  return b.toString('hex').toUpperCase();
}

import { normaliseSerial } from './serial.ts';

export { normaliseSerial };

/** Creates the panel's CA: ECDSA P-256, self-signed, CA:true, pathlen 0, keyCertSign + cRLSign. */
export async function createCa(opts: { commonName?: string; days?: number } = {}): Promise<CaMaterial> {
  const { privateKeyPem, keys } = await generateKeyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: `CN=${opts.commonName ?? 'PonIO panel CA'}`,
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + (opts.days ?? 3650) * DAY),
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: privateKeyPem };
}

export interface IssueOptions {
  ca: CaMaterial;
  /** The subject's public key: from a CSR, or generated here when absent (key returned). */
  publicKey?: CryptoKey;
  /**
   * panel: clientAuth + serverAuth, URI urn:ponio:panel only; host: serverAuth + clientAuth, URI
   * urn:ponio:host:<id> only; server (the panel's HTTPS certificate for browsers): serverAuth,
   * DNS names / IPs only, no PonIO identity.
   */
  role: { kind: 'panel' } | { kind: 'host'; hostId: string } | { kind: 'server' };
  /** Only for the server role: a PonIO identity never comes with a name a browser would accept. */
  dnsNames?: string[];
  ips?: string[];
  days?: number;
  notBefore?: Date;
  notAfter?: Date;
  serial?: string;
}

/**
 * Issues a certificate (docs/security.md §1). Identities and names never mix: panel → SAN URI
 * urn:ponio:panel, clientAuth + serverAuth (the panel is the TLS client of agents it dials and
 * the TLS server of agents that enroll or dial in); host → SAN URI urn:ponio:host:<id>,
 * serverAuth + clientAuth; server → the panel's DNS names / IPs, serverAuth. So no PonIO identity
 * passes a browser's or a hostname check, and the HTTPS certificate is never "the panel" to an
 * agent. The identity comes from the caller (the panel's record), never from a CSR subject.
 */
export async function issueCertificate(opts: IssueOptions): Promise<IssuedCert> {
  if (opts.role.kind !== 'server' && ((opts.dnsNames?.length ?? 0) > 0 || (opts.ips?.length ?? 0) > 0))
    throw new Error(
      `a ${opts.role.kind} certificate carries only its urn:ponio identity, no DNS names or IPs`,
    );
  const caKeys = await importKeyPair(opts.ca.keyPem);
  const caCert = new x509.X509Certificate(opts.ca.certPem);
  let keyPem = '';
  let publicKey = opts.publicKey;
  if (!publicKey) {
    const kp = await generateKeyPair();
    keyPem = kp.privateKeyPem;
    publicKey = kp.keys.publicKey;
  }
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - 5 * 60_000);
  const notAfter = opts.notAfter ?? new Date(now + (opts.days ?? 90) * DAY);
  const serial = opts.serial ?? newSerial();
  const names: { type: 'url' | 'dns' | 'ip'; value: string }[] = [];
  if (opts.role.kind === 'panel') names.push({ type: 'url', value: PANEL_URI });
  else if (opts.role.kind === 'host') names.push({ type: 'url', value: hostUri(opts.role.hostId) });
  for (const d of opts.dnsNames ?? []) names.push({ type: 'dns', value: d });
  for (const ip of opts.ips ?? []) names.push({ type: 'ip', value: ip });
  const eku =
    opts.role.kind === 'panel'
      ? [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]
      : opts.role.kind === 'server'
        ? [x509.ExtendedKeyUsage.serverAuth]
        : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const cn =
    opts.role.kind === 'panel'
      ? 'PonIO panel'
      : opts.role.kind === 'server'
        ? (opts.dnsNames?.[0] ?? 'PonIO panel HTTPS')
        : `PonIO host ${opts.role.hostId}`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${cn}`,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(eku, false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem, serial: normaliseSerial(serial), notAfter };
}

/** `sha256:HEX` of the DER of a certificate: what `--ca-pin` compares. */
export function certFingerprint(certPem: string): string {
  const der = new NodeCert(certPem).raw;
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}
