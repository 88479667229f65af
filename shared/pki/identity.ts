/** The SAN URI every panel certificate carries. */
export const PANEL_URI = 'urn:ponio:panel';
/**
 * The TLS server name (SNI) an enrolling agent asks the panel's HTTPS port for: the panel then
 * presents its own certificate (urn:ponio:panel) instead of the browser-facing one. `.invalid`
 * is reserved: no browser or real host ever sends it.
 */
export const PANEL_TLS_NAME = 'panel.ponio.invalid';
export const HOST_URI_PREFIX = 'urn:ponio:host:';
export const hostUri = (hostId: string): string => `${HOST_URI_PREFIX}${hostId}`;

export type CertRole = { kind: 'panel' } | { kind: 'host'; hostId: string } | { kind: 'ca' };
