export * from './identity.ts';
export * from './ca.ts';
export * from './csr.ts';
export * from './verify.ts';
export { generateKeyPair, importKeyPair } from './crypto.ts';
