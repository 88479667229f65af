import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { RpcError } from '../../../shared/protocol/errors.ts';

/**
 * Checks of a certificate an admin uploads ("use my own certificate") and facts of any site
 * certificate. Node's own X.509 and key parsing (OpenSSL underneath), no home-made ASN.1.
 */

const bad = (m: string): RpcError => new RpcError('invalid-argument', m);
const PEM_CERT = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM chain, leaf first; refuses anything that is not one. */
export function parseChain(text: string): X509Certificate[] {
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0)
    throw bad('The certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----).');
  if (blocks.length > 10) throw bad('The certificate chain has more than 10 certificates.');
  const rest = blocks.reduce((t, b) => t.replace(b, ''), text).trim();
  if (rest !== '') throw bad('The certificate field holds something besides PEM certificates.');
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw bad(`Certificate ${i + 1} of the chain cannot be read (damaged PEM).`);
    }
  });
}

export interface CertFacts {
  names: string[];
  issuer: string;
  notBefore: number;
  notAfter: number;
}

/** DNS names of a certificate (subjectAltName, else the CN). */
export function certFacts(cert: X509Certificate): CertFacts {
  const san = cert.subjectAltName ?? '';
  const names = san
    .split(/,\s*/)
    .filter((p) => p.startsWith('DNS:'))
    .map((p) => p.slice(4));
  const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1];
  return {
    names: names.length > 0 ? names : cn !== undefined ? [cn] : [],
    issuer: cert.issuer.split('\n').join(', '),
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
  };
}

/**
 * An uploaded chain and key for a site: the key is a readable, unencrypted private key that
 * belongs to the leaf; every certificate is issued (and signed) by the next; all are valid now;
 * the leaf covers the domain and each alias. Returns the normalised PEM texts.
 */
export function checkUpload(
  certificate: string,
  keyText: string,
  names: readonly string[],
  now = Date.now(),
): { chain: string; key: string; facts: CertFacts } {
  const chain = parseChain(certificate);
  const leaf = chain[0];
  if (!leaf) throw bad('The certificate chain is empty.');
  if (!/-----BEGIN (EC |RSA |)PRIVATE KEY-----/.test(keyText))
    throw bad('The key is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----).');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyText, format: 'pem' });
  } catch {
    throw bad('The key cannot be read (damaged, or protected by a passphrase).');
  }
  if (!leaf.checkPrivateKey(key)) throw bad('The private key does not belong to the certificate.');
  for (const [i, c] of chain.entries()) {
    const from = Date.parse(c.validFrom);
    const to = Date.parse(c.validTo);
    if (now < from) throw bad(`Certificate ${i + 1} of the chain is not valid before ${c.validFrom}.`);
    if (now > to) throw bad(`Certificate ${i + 1} of the chain expired on ${c.validTo}.`);
    const next = chain[i + 1];
    if (next && (!c.checkIssued(next) || !c.verify(next.publicKey)))
      throw bad(
        `Certificate ${i + 1} of the chain is not issued by certificate ${i + 2}: the chain is broken.`,
      );
  }
  const uncovered = names.filter((n) => leaf.checkHost(n) === undefined);
  if (uncovered.length > 0)
    throw bad(
      `The certificate does not cover ${uncovered.join(', ')} (it names ${certFacts(leaf).names.join(', ')}).`,
    );
  const keyPem = key.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    chain: `${chain.map((c) => c.toString().trim()).join('\n')}\n`,
    key: keyPem,
    facts: certFacts(leaf),
  };
}
