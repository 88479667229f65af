import { rpcEvents, type EventName, type ModuleName } from '../../shared/protocol/index.ts';
import { parseSelector, selectorMatches, type Labels } from '../../shared/validate/labels.ts';
import type { HostRegistry } from '../hosts/registry.ts';
import type { HostLabelsRepo } from '../db/labels.ts';
import type { JobTarget } from './spec.ts';

export class TargetError extends Error {}

/** A targeted host as the preview shows it. */
export interface TargetHost {
  id: string;
  name: string;
  labels: Labels;
  /** Connection state now (null: the panel holds no connection, e.g. just removed). */
  state: string | null;
  /** Whether the host's agent offers the event's module (null: unknown, never said hello). */
  capable: boolean | null;
  reason: string | null;
}

export interface ResolvedTarget {
  hosts: TargetHost[];
  /** "12 hosts match: a, b, c, …" */
  summary: string;
  /** Hosts the target matched but the actor's scope left out (server/jobs/engine.ts). */
  outOfScope?: number;
}

/** Whether a host's last hello offers a module: true, false (with the agent's reason) or unknown. */
export function moduleOffer(
  registry: HostRegistry,
  hostId: string,
  module: ModuleName,
): { capable: boolean | null; reason: string | null } {
  const hello = registry.manager.status(hostId)?.hello;
  if (!hello) return { capable: null, reason: null };
  const m = hello.modules.find((x) => x.name === module);
  if (!m) return { capable: false, reason: `the agent does not know the ${module} module` };
  return m.available
    ? { capable: true, reason: null }
    : { capable: false, reason: m.reason ?? 'not available' };
}

/**
 * The enrolled hosts a target names, in name order: all, or the listed ones, narrowed by the
 * selector and the module, minus the exclusions. An unknown host name, a pending host in the list
 * or a bad selector is refused with a sentence.
 */
export function resolveTarget(
  registry: HostRegistry,
  labelsRepo: HostLabelsRepo,
  target: JobTarget,
  event?: EventName,
): ResolvedTarget {
  const rows = registry.repo.list();
  const byRef = (ref: string) => {
    const lower = ref.toLowerCase();
    return rows.find((h) => h.id === ref) ?? rows.find((h) => h.name.toLowerCase() === lower);
  };
  const refs = (list: readonly string[], what: string): Set<string> => {
    const ids = new Set<string>();
    for (const ref of list) {
      const h = byRef(ref);
      if (!h)
        throw new TargetError(`No host with the id or name ${JSON.stringify(ref.slice(0, 80))} (${what}).`);
      ids.add(h.id);
    }
    return ids;
  };
  let candidates = rows.filter((h) => h.status === 'enrolled');
  if (target.hosts !== undefined) {
    const listed = refs(target.hosts, 'in the host list');
    const pending = rows.find((h) => listed.has(h.id) && h.status !== 'enrolled');
    if (pending)
      throw new TargetError(`Host ${pending.name} is not enrolled yet; a job can only reach enrolled hosts.`);
    candidates = candidates.filter((h) => listed.has(h.id));
  }
  const labels = labelsRepo.all();
  if (target.selector !== undefined) {
    const sel = parseSelector(target.selector);
    if (!sel.ok) throw new TargetError(sel.message);
    candidates = candidates.filter((h) => selectorMatches(sel.value, labels.get(h.id) ?? {}));
  }
  if (target.module !== undefined) {
    const mod = target.module;
    candidates = candidates.filter((h) => moduleOffer(registry, h.id, mod).capable === true);
  }
  if (target.exclude !== undefined) {
    const out = refs(target.exclude, 'in the exclusions');
    candidates = candidates.filter((h) => !out.has(h.id));
  }
  const module = event ? rpcEvents[event].module : null;
  const hosts = candidates.map((h): TargetHost => {
    const offer = module ? moduleOffer(registry, h.id, module) : { capable: null, reason: null };
    return {
      id: h.id,
      name: h.name,
      labels: labels.get(h.id) ?? {},
      state: registry.manager.status(h.id)?.state ?? null,
      ...offer,
    };
  });
  return { hosts, summary: targetSummary(hosts) };
}

export function targetSummary(hosts: readonly TargetHost[]): string {
  if (hosts.length === 0) return 'No host matches.';
  const shown = hosts.slice(0, 10).map((h) => h.name);
  const more = hosts.length > shown.length ? `, … (${hosts.length - shown.length} more)` : '';
  const offline = hosts.filter((h) => h.state !== 'online').length;
  const incapable = hosts.filter((h) => h.capable === false).length;
  const notes = [
    offline > 0 ? `${offline} not online` : '',
    incapable > 0 ? `${incapable} without the module` : '',
  ].filter(Boolean);
  return `${hosts.length} host${hosts.length === 1 ? '' : 's'} match${hosts.length === 1 ? 'es' : ''}: ${shown.join(', ')}${more}${notes.length ? ` (${notes.join(', ')})` : ''}.`;
}
