/** The SAN URI every panel certificate carries. */
export const PANEL_URI = 'urn:ponio:panel';
export const HOST_URI_PREFIX = 'urn:ponio:host:';
export const hostUri = (hostId: string): string => `${HOST_URI_PREFIX}${hostId}`;

export type CertRole = { kind: 'panel' } | { kind: 'host'; hostId: string } | { kind: 'ca' };
