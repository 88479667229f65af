import { Router } from 'express';
import type { PanelContext } from '../context.ts';

/**
 * REST endpoints of the mysql domain, relative to /api/v1/hosts/:hostId (mergeParams).
 * Placeholder: the mysql module fills it in (see docs/panel-extension.md).
 */
export function mysqlApi(_ctx: PanelContext): Router {
  return Router({ mergeParams: true });
}
