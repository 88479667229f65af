import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle;

/** ECDSA P-256, as design §3 asks for the CA and every certificate. */
export const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface KeyPairPem {
  privateKeyPem: string;
  keys: CryptoKeyPair;
}

export async function generateKeyPair(): Promise<KeyPairPem> {
  const keys = await subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  return { privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), keys };
}

/** Imports a PKCS#8 PEM EC private key and derives its public key. */
export async function importKeyPair(privateKeyPem: string): Promise<CryptoKeyPair> {
  const der = x509.PemConverter.decodeFirst(privateKeyPem);
  const privateKey = await subtle.importKey('pkcs8', der, EC_ALG, true, ['sign']);
  const jwk = await subtle.exportKey('jwk', privateKey);
  delete jwk.d;
  jwk.key_ops = ['verify'];
  const publicKey = await subtle.importKey('jwk', jwk, EC_ALG, true, ['verify']);
  return { privateKey, publicKey };
}
