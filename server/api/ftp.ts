import { Router } from 'express';
import type { PanelContext } from '../context.ts';

/**
 * REST endpoints of the ftp domain, relative to /api/v1/hosts/:hostId (mergeParams).
 * Placeholder: the ftp module fills it in (see docs/panel-extension.md).
 */
export function ftpApi(_ctx: PanelContext): Router {
  return Router({ mergeParams: true });
}
