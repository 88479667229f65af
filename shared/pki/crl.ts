import { x509, importKeyPair, SIGN_ALG } from './crypto.ts';
import type { CaMaterial } from './ca.ts';

const DAY = 86_400_000;

/** How long a CRL made by {@link createCrl} is valid; holders re-sign it well before that. */
export const CRL_VALID_MS = 7 * DAY;

/**
 * A CRL of the CA listing `serials` (hex), PEM. It goes into a TLS secure context (`crl`), so
 * OpenSSL itself refuses a revoked certificate during the handshake (alert "certificate
 * revoked"), before any application byte. An empty list is a valid CRL too: with a CRL loaded
 * OpenSSL requires one for the issuer.
 */
export async function createCrl(
  ca: CaMaterial,
  serials: Iterable<string>,
  now = Date.now(),
): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const keys = await importKeyPair(ca.keyPem);
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subject,
    thisUpdate: new Date(now - 5 * 60_000),
    nextUpdate: new Date(now + CRL_VALID_MS),
    signingAlgorithm: SIGN_ALG,
    signingKey: keys.privateKey,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(caCert, false)],
    entries: [...new Set(serials)].map((serialNumber) => ({
      serialNumber,
      revocationDate: new Date(now - 5 * 60_000),
    })),
  });
  // OpenSSL reads the tag X509 CRL (the library writes CRL).
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
}
