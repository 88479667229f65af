import type { RequestHandler } from 'express';
import type { HostScopes } from './host-scope.ts';
import type { HostsRepo } from '../db/hosts.ts';
import { PanelHttpError } from '../http/errors.ts';

/**
 * The one host check of the dashboard and the REST API, mounted on `/hosts/:hostId` before every
 * host route (server/api/index.ts, server/http/dashboard.ts), so a route added under that path
 * is covered without doing anything. A host outside the actor's scope answers 404 exactly like
 * an unknown one (it is invisible); a host in scope narrows `req.actor.role` to the actor's role
 * on that host, so each route's own `requireRole` and HostActions decide with the host's role.
 * An unknown id passes through untouched for a whole-fleet actor (the route says "no such host",
 * or serves /hosts/new); a scoped actor gets the same 404 as for a host outside their scope.
 */
export function hostScopeGuard(d: { scopes: HostScopes; hosts: HostsRepo }): RequestHandler {
  return (req, _res, next) => {
    const actor = req.actor;
    const id = (req.params as Record<string, string | undefined>).hostId;
    if (!actor || id === undefined) {
      next();
      return;
    }
    // For a scoped actor an unknown id gets this very answer too, so no route's own wording for
    // "unknown" can tell an existing host outside the scope from one that does not exist.
    const role = d.hosts.get(id) ? d.scopes.roleOn(actor, id) : d.scopes.wholeFleet(actor) ? undefined : null;
    if (role === undefined) {
      next();
      return;
    }
    if (role === null) {
      next(new PanelHttpError(404, 'not-found', `No host with id ${id}.`));
      return;
    }
    req.actor = { ...actor, role };
    next();
  };
}

/**
 * Route guard for actions about the fleet as a whole (adding a host, changing labels): a scoped
 * actor may not, since the new or relabelled host's place in everyone's scope is at stake.
 */
export function requireWholeFleet(scopes: HostScopes, what: string): RequestHandler {
  return (req, _res, next) => {
    if (req.actor && !scopes.wholeFleet(req.actor)) {
      next(
        new PanelHttpError(
          403,
          'permission-denied',
          `Your access is limited to some hosts; ${what} needs access to all hosts.`,
        ),
      );
      return;
    }
    next();
  };
}
