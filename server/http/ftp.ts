import { Router } from 'express';
import type { PanelContext } from '../context.ts';

/**
 * Dashboard tab of the ftp domain, mounted at /hosts/:hostId/ftp (mergeParams).
 * Placeholder: the ftp module fills it in (see docs/panel-extension.md).
 */
export function ftpPages(_ctx: PanelContext): Router {
  return Router({ mergeParams: true });
}
