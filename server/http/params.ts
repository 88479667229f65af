import type { Request } from 'express';
import { PanelHttpError } from './errors.ts';

/** A route parameter as a string (Express 5 types them loosely); 400 when absent. */
export function param(req: Request, name: string): string {
  const v: unknown = (req.params as Record<string, unknown>)[name];
  if (typeof v !== 'string' || v.length === 0)
    throw new PanelHttpError(400, 'invalid-argument', `Missing ${name}.`);
  return v;
}

/** The :hostId of a host-scoped route, checked to exist. */
export function hostIdParam(req: Request): string {
  return param(req, 'hostId');
}
