import { Router } from 'express';
import type { PanelContext } from '../context.ts';

/**
 * REST endpoints of the firewall domain, relative to /api/v1/hosts/:hostId (mergeParams).
 * Placeholder: the firewall module fills it in (see docs/panel-extension.md).
 */
export function firewallApi(_ctx: PanelContext): Router {
  return Router({ mergeParams: true });
}
