import { x509, generateKeyPair, SIGN_ALG } from './crypto.ts';

/** Creates a key pair and a CSR for it. The private key never leaves the caller. */
export async function createCsr(commonName = 'PonIO agent'): Promise<{ csrPem: string; keyPem: string }> {
  const { privateKeyPem, keys } = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName.replace(/[^A-Za-z0-9 ._-]/g, '')}`,
    keys,
    signingAlgorithm: SIGN_ALG,
  });
  return { csrPem: csr.toString('pem'), keyPem: privateKeyPem };
}

/** Creates a CSR for an existing key (renewal keeps or replaces the key; the caller decides). */
export async function createCsrForKey(keys: CryptoKeyPair, commonName = 'PonIO agent'): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: SIGN_ALG,
  });
  return csr.toString('pem');
}

/**
 * Parses a CSR, checks its self-signature (proof of possession of the key) and that the key is
 * ECDSA P-256. Returns the public key only: the subject and any requested names are ignored.
 */
export async function publicKeyFromCsr(csrPem: string): Promise<CryptoKey> {
  if (typeof csrPem !== 'string' || csrPem.length > 10_000 || !csrPem.includes('CERTIFICATE REQUEST'))
    throw new Error('The certificate request is not a PEM CSR.');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    throw new Error('The certificate request could not be parsed.');
  }
  if (!(await csr.verify())) throw new Error('The certificate request signature is invalid.');
  const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256')
    throw new Error('The certificate request must use an ECDSA P-256 key.');
  return csr.publicKey.export({ name: 'ECDSA', namedCurve: 'P-256' }, ['verify']);
}
