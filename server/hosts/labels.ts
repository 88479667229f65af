import { validateLabels, type Labels } from '../../shared/validate/labels.ts';
import type { Actor, AuditLog } from '../db/audit.ts';
import type { HostsRepo } from '../db/hosts.ts';
import type { HostLabelsRepo } from '../db/labels.ts';
import { PanelHttpError } from '../http/errors.ts';

/**
 * Replaces a host's labels (dashboard, API and CLI alike): validated in shared/validate/labels.ts,
 * stored in one transaction, audited. Throws PanelHttpError 400/404.
 */
export function setHostLabels(
  d: { hosts: HostsRepo; labels: HostLabelsRepo; audit: AuditLog },
  actor: Actor,
  hostRef: string,
  input: unknown,
): { hostId: string; labels: Labels } {
  const host = d.hosts.get(hostRef) ?? d.hosts.getByName(hostRef);
  if (!host)
    throw new PanelHttpError(
      404,
      'not-found',
      `No host with id or name ${JSON.stringify(hostRef.slice(0, 80))}.`,
    );
  const v = validateLabels(input);
  if (!v.ok) throw new PanelHttpError(400, 'invalid-argument', v.message);
  d.labels.set(host.id, v.value);
  d.audit.write({ actor, hostId: host.id, action: 'host labels', params: { labels: v.value }, ok: true });
  return { hostId: host.id, labels: v.value };
}
