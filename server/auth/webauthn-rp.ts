import { isIP } from 'node:net';
import type { Request } from 'express';
import type { PanelConfig } from '../config.ts';
import type { RelyingParty } from './two-factor.ts';

/**
 * The WebAuthn relying party for a request: the DNS name the browser opened the panel by, if it
 * is one of the panel's own names (public URL, --server-name, listen host, localhost) — never a
 * name taken from the request on trust, since the RP ID is what ties a passkey to this panel.
 * An IP address cannot be an RP ID (browsers refuse it): null, and the pages say why.
 */
export function relyingParty(config: PanelConfig, publicUrl: string, req: Request): RelyingParty | null {
  const hostHeader = req.get('host') ?? '';
  let host: string;
  try {
    host = new URL(`https://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return null;
  }
  if (host === '' || isIP(host.replace(/^\[|\]$/g, '')) !== 0) return null;
  const names = new Set(['localhost', ...config.serverNames.map((n) => n.toLowerCase())]);
  try {
    names.add(new URL(publicUrl).hostname.toLowerCase());
  } catch {
    /* no public URL name */
  }
  if (isIP(config.host) === 0 && config.host !== '') names.add(config.host.toLowerCase());
  if (!names.has(host)) return null;
  return { id: host, origin: `https://${hostHeader.toLowerCase()}` };
}

export const NO_RP_MESSAGE =
  'Passkeys and security keys need the panel opened by its DNS name (for example https://localhost:8443 or its public name), not an IP address.';
