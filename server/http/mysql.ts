import { Router } from 'express';
import type { PanelContext } from '../context.ts';

/**
 * Dashboard tab of the mysql domain, mounted at /hosts/:hostId/mysql (mergeParams).
 * Placeholder: the mysql module fills it in (see docs/panel-extension.md).
 */
export function mysqlPages(_ctx: PanelContext): Router {
  return Router({ mergeParams: true });
}
