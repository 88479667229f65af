/** Bumped on any incompatible change of the RPC contract. The panel refuses a different major. */
export const PROTOCOL_VERSION = 1;
export const PONIO_VERSION = '0.1.0';
