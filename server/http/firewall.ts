import { Router } from 'express';
import type { PanelContext } from '../context.ts';

/**
 * Dashboard tab of the firewall domain, mounted at /hosts/:hostId/firewall (mergeParams).
 * Placeholder: the firewall module fills it in (see docs/panel-extension.md).
 */
export function firewallPages(_ctx: PanelContext): Router {
  return Router({ mergeParams: true });
}
