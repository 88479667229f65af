import { Router } from 'express';
import type { PanelContext } from '../context.ts';

/**
 * Dashboard tab of the websites domain, mounted at /hosts/:hostId/websites (mergeParams).
 * Placeholder: the websites module fills it in (see docs/panel-extension.md).
 */
export function websitesPages(_ctx: PanelContext): Router {
  return Router({ mergeParams: true });
}
