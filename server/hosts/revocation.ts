import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { Actor, AuditLog } from '../db/audit.ts';
import { HostsRepo, type HostRow } from '../db/hosts.ts';
import type { PanelEvents } from '../events.ts';
import type { HostStatus } from './connection-manager.ts';
import type { HostRegistry } from './registry.ts';
import type { PanelPki } from './pki-store.ts';
import { EnrollmentError } from './enrollment-input.ts';

/** Revokes every live certificate of a host in the certificates table; returns the serials. */
export function revokeHostCertificates(db: Db, hostId: string, reason: string, now = Date.now()): string[] {
  const serials = (
    db
      .prepare("SELECT serial FROM certificates WHERE kind = 'host' AND host_id = ? AND revoked_at IS NULL")
      .all(hostId) as { serial: string }[]
  ).map((r) => r.serial);
  db.prepare(
    "UPDATE certificates SET revoked_at = ?, reason = ? WHERE kind = 'host' AND host_id = ? AND revoked_at IS NULL",
  ).run(now, reason, hostId);
  return serials;
}

/** Revoked host-certificate serials: the panel refuses an agent presenting one of them. */
export function revokedHostSerials(db: Db): ReadonlySet<string> {
  return new Set(
    (
      db.prepare("SELECT serial FROM certificates WHERE kind = 'host' AND revoked_at IS NOT NULL").all() as {
        serial: string;
      }[]
    ).map((r) => r.serial),
  );
}

/** A host by id or (case-insensitive) name. */
export function findHost(repo: HostsRepo, idOrName: string): HostRow | null {
  return repo.get(idOrName) ?? repo.getByName(idOrName);
}

/**
 * Removes a host from the panel: revokes its certificates and join tokens, deletes its record
 * and writes the audit entry. Works on the database alone (the CLI uses it while a panel may be
 * running; that panel's reconcile loop then drops the connection within seconds).
 */
export function removeHostRecord(
  db: Db,
  audit: AuditLog,
  actor: Actor,
  idOrName: string,
): { host: HostRow; revoked: string[] } {
  const repo = new HostsRepo(db);
  const host = findHost(repo, idOrName);
  if (!host)
    throw new EnrollmentError(
      404,
      'not-found',
      `No host with id or name ${JSON.stringify(idOrName.slice(0, 80))}.`,
    );
  const revoked = db.transaction(() => {
    const serials = revokeHostCertificates(db, host.id, 'host removed');
    db.prepare(
      'UPDATE join_tokens SET revoked_at = ? WHERE host_id = ? AND used_at IS NULL AND revoked_at IS NULL',
    ).run(Date.now(), host.id);
    repo.delete(host.id);
    return serials;
  })();
  audit.write({
    actor,
    hostId: host.id,
    action: 'host remove',
    params: { name: host.name, address: host.address, port: host.port, revokedSerials: revoked },
    ok: true,
  });
  return { host, revoked };
}

export interface RevocationDeps {
  db: Db;
  pki: PanelPki;
  hosts: HostRegistry;
  audit: AuditLog;
  events: PanelEvents;
  logger: Logger;
  /** How often connections are reconciled with the database (removals made by the CLI). */
  reconcileMs?: number;
  /** Told after a host certificate was revoked (the agent listener's CRL is re-signed at once). */
  onRevoked?: () => void;
}

export const SYSTEM_ACTOR: Actor = { kind: 'system', name: 'system', role: 'admin' };

/**
 * Taking trust back (design §3): host removal cuts the live connection at once and the panel
 * never reconnects; the panel's revoked certificate serials are pushed to every agent on each
 * connect and after a rotation, so a retired panel certificate is refused everywhere.
 */
export class Revocation {
  private timer: NodeJS.Timeout | null = null;
  private readonly onState = (s: HostStatus): void => {
    if (s.state === 'online') void this.pushRevocations(s.id);
  };

  constructor(private readonly deps: RevocationDeps) {}

  start(): void {
    this.deps.hosts.manager.on('state', this.onState);
    this.timer = setInterval(() => this.reconcile(), this.deps.reconcileMs ?? 2_000);
    this.timer.unref();
  }

  stop(): void {
    this.deps.hosts.manager.off('state', this.onState);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Removes a host: certificate revoked, connection dropped now, record deleted, audited. */
  removeHost(actor: Actor, idOrName: string): HostRow {
    const repo = this.deps.hosts.repo;
    const found = findHost(repo, idOrName);
    // Drop the connection first so not one more call goes out to a host being removed.
    if (found) this.deps.hosts.disconnect(found.id);
    const { host, revoked } = removeHostRecord(this.deps.db, this.deps.audit, actor, idOrName);
    this.deps.onRevoked?.();
    this.deps.logger.info({ hostId: host.id, revoked }, 'host removed; certificate revoked');
    this.deps.events.emit('hostsChanged');
    this.deps.events.emit('hostChange', {
      hostId: host.id,
      action: 'host remove',
      module: 'hosts',
      actor: actor.name,
      ok: true,
      message: `${actor.name} removed host ${host.name}`,
    });
    return host;
  }

  /** Sends the revoked panel serials to one connected agent. */
  async pushRevocations(hostId: string): Promise<boolean> {
    const serials = this.deps.pki.revokedPanelSerials();
    const r = await this.deps.hosts.manager.call(hostId, 'set revocations', { serials });
    if (!r.ok) this.deps.logger.warn({ hostId, err: r.error.message }, 'could not push the revocation list');
    return r.ok;
  }

  /**
   * Rotates the panel's client certificate: a new one is issued, the old serial revoked and
   * pushed to every connected agent, then every connection is re-made with the new certificate.
   * Agents that are offline get the list when they next connect.
   */
  async rotatePanelCertificate(actor: Actor): Promise<{ oldSerial: string; newSerial: string }> {
    const started = performance.now();
    const r = await this.deps.pki.rotatePanelCertificate();
    this.deps.pki.revoke(r.oldSerial, 'panel certificate rotated');
    const online = this.deps.hosts.manager.statuses().filter((s) => s.state === 'online');
    await Promise.all(online.map((s) => this.pushRevocations(s.id)));
    this.deps.hosts.manager.reconnectAll();
    this.deps.audit.write({
      actor,
      hostId: null,
      action: 'panel certificate rotate',
      params: { oldSerial: r.oldSerial, newSerial: r.newSerial, pushedTo: online.map((s) => s.id) },
      ok: true,
      durationMs: performance.now() - started,
    });
    this.deps.logger.info(r, 'panel certificate rotated');
    return r;
  }

  /**
   * Keeps connections in line with the database: a host that was removed (e.g. by the CLI, from
   * another process) or whose certificate was revoked is dropped and not reconnected.
   */
  reconcile(): void {
    const { hosts, db } = this.deps;
    const live = new Set(
      (
        db
          .prepare(
            "SELECT h.id FROM hosts h LEFT JOIN certificates c ON c.serial = h.cert_serial WHERE h.status = 'enrolled' AND c.revoked_at IS NULL",
          )
          .all() as { id: string }[]
      ).map((r) => r.id),
    );
    for (const s of hosts.manager.statuses()) {
      if (live.has(s.id)) continue;
      this.deps.logger.info({ hostId: s.id }, 'dropping the connection of a removed or revoked host');
      hosts.disconnect(s.id);
    }
    // A host switched between modes (or moved) by the CLI: linked again the new way.
    for (const row of hosts.repo.list()) {
      const t = hosts.manager.target(row.id);
      if (!t || !live.has(row.id)) continue;
      const same =
        t.mode === 'reverse'
          ? row.mode === 'reverse'
          : row.mode === 'forward' && t.address === row.address && t.port === row.port;
      if (same) continue;
      this.deps.logger.info(
        { hostId: row.id, mode: row.mode },
        'host mode or address changed; linking it again',
      );
      hosts.connect(row);
    }
  }
}
