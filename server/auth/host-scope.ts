import type { Actor } from '../db/audit.ts';
import type { GrantsRepo } from '../db/grants.ts';
import type { HostLabelsRepo } from '../db/labels.ts';
import type { HostsRepo } from '../db/hosts.ts';
import type { ApiTokens } from './api-tokens.ts';
import type { UsersRepo } from './users.ts';
import type { Role } from './roles.ts';
import { compileGrants, isWholeFleet, roleIn, wholeFleet, type HostScope } from './scope.ts';

/**
 * Which hosts an actor may see and with which role (docs/security.md "Host scopes"). Always read
 * from the database at the moment of the check (grants, token selector, labels), so a changed
 * grant or label applies at once to pages, API, sockets and running jobs alike.
 */
export class HostScopes {
  constructor(
    private readonly d: {
      grants: GrantsRepo;
      tokens: ApiTokens;
      users: UsersRepo;
      labels: HostLabelsRepo;
      hosts: HostsRepo;
    },
  ) {}

  /** The actor's scope: a user's grants; a token's selector on top of its creator's grants. */
  of(actor: Actor): HostScope {
    if (actor.role === 'admin') return wholeFleet('admin');
    const layers: HostScope['layers'][number][] = [];
    const userLayer = (userId: number): void => {
      const grants = this.d.grants.of(userId);
      if (grants.length > 0) layers.push(compileGrants(grants));
    };
    if (actor.kind === 'user' && actor.userId !== undefined) userLayer(actor.userId);
    if (actor.kind === 'token' && actor.tokenId !== undefined) {
      const t = this.d.tokens.get(actor.tokenId);
      // A token row that is gone acts on nothing (it was verified moments ago; deleted since).
      if (!t) return { ceiling: actor.role, layers: [[]] };
      if (t.created_by !== null) userLayer(t.created_by);
      if (t.selector !== null) layers.push(compileGrants([{ role: t.role, selector: t.selector }]));
    }
    return { ceiling: actor.role, layers };
  }

  /** Whether the actor sees every host (no scoped grant and no token selector). */
  wholeFleet(actor: Actor): boolean {
    return isWholeFleet(this.of(actor));
  }

  /** The actor's role on a host, or null when the host is outside the scope (or unknown). */
  roleOn(actor: Actor, hostId: string): Role | null {
    if (!this.d.hosts.get(hostId)) return null;
    return roleIn(this.of(actor), this.d.labels.get(hostId));
  }

  /** A test "is this host id in scope" for many hosts at once (one read of grants and labels). */
  visibility(actor: Actor): (hostId: string) => boolean {
    const scope = this.of(actor);
    if (isWholeFleet(scope)) return () => true;
    const labels = this.d.labels.all();
    return (id) => roleIn(scope, labels.get(id) ?? {}) !== null;
  }

  /** The host ids the actor sees, or null for all of them. */
  visibleIds(actor: Actor): Set<string> | null {
    const scope = this.of(actor);
    if (isWholeFleet(scope)) return null;
    const labels = this.d.labels.all();
    return new Set(
      this.d.hosts
        .list()
        .filter((h) => roleIn(scope, labels.get(h.id) ?? {}) !== null)
        .map((h) => h.id),
    );
  }

  /** The items about hosts in scope (by `hostId` or `id`). */
  filter<T>(actor: Actor, items: readonly T[], idOf: (t: T) => string): T[] {
    const see = this.visibility(actor);
    return items.filter((t) => see(idOf(t)));
  }
}
