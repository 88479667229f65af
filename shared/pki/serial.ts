/**
 * Certificate serial numbers as node's X509Certificate prints them: upper-case hex, no leading
 * zeros. Kept apart from ca.ts so that code which only compares serials (the agent's TLS check,
 * its revocation list) does not load the certificate-issuing library at start-up.
 */
export const normaliseSerial = (serial: string): string => serial.toUpperCase().replace(/^0+(?=.)/, '');
