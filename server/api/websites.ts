import { Router } from 'express';
import type { PanelContext } from '../context.ts';

/**
 * REST endpoints of the websites domain, relative to /api/v1/hosts/:hostId (mergeParams).
 * Placeholder: the websites module fills it in (see docs/panel-extension.md).
 */
export function websitesApi(_ctx: PanelContext): Router {
  return Router({ mergeParams: true });
}
