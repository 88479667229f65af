import type { Logger } from 'pino';
import { publicKeyFromCsr } from '../../shared/pki/index.ts';
import type { Db } from '../db/database.ts';
import type { Actor, AuditLog } from '../db/audit.ts';
import type { PanelEvents } from '../events.ts';
import type { PanelPki } from './pki-store.ts';
import { needsRenewal } from './pki-store.ts';
import type { HostRegistry } from './registry.ts';
import type { Revocation } from './revocation.ts';

export interface RenewalDeps {
  db: Db;
  pki: PanelPki;
  hosts: HostRegistry;
  audit: AuditLog;
  events: PanelEvents;
  revocation: Revocation;
  logger: Logger;
  /** Lifetime of host certificates in ms (90 days; short in tests). */
  certLifetimeMs: number;
  /** How often to look for certificates due (1 h; short in tests). */
  checkIntervalMs: number;
}

export type RenewResult = { ok: true; serial: string; notAfter: number } | { ok: false; message: string };

const SYSTEM: Actor = { kind: 'system', name: 'renewal', role: 'admin' };

/** When a certificate is due: two thirds into the life the panel gave it (its own record). */
export const renewalDue = (issuedAt: number, notAfter: number): number =>
  issuedAt + ((notAfter - issuedAt) * 2) / 3;

/**
 * Renews host certificates at two thirds of their life over the existing mutual-TLS link:
 * the agent makes a new key and returns a CSR (`renew certificate`), the panel signs it with
 * the identity from its own record and sends it back (`install certificate`); the agent serves
 * it without dropping connections. The old serial is revoked once the new one is installed.
 * Also rotates the panel's own client certificate when it reaches two thirds of its life.
 */
export class RenewalScheduler {
  private timer: NodeJS.Timeout | null = null;
  private first: NodeJS.Timeout | null = null;
  private running = false;
  private readonly inFlight = new Set<string>();

  constructor(private readonly deps: RenewalDeps) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.deps.checkIntervalMs);
    this.timer.unref();
    // A first look soon after start: certificates may have fallen due while the panel was down.
    this.first = setTimeout(() => void this.tick(), Math.min(15_000, this.deps.checkIntervalMs));
    this.first.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.first) clearTimeout(this.first);
    this.timer = null;
    this.first = null;
  }

  /** Hosts whose current certificate is due, with their ids. */
  due(now = Date.now()): string[] {
    const rows = this.deps.db
      .prepare(
        "SELECT h.id, c.issued_at, c.not_after FROM hosts h JOIN certificates c ON c.serial = h.cert_serial WHERE h.status = 'enrolled' AND c.revoked_at IS NULL",
      )
      .all() as { id: string; issued_at: number; not_after: number }[];
    return rows.filter((r) => now >= renewalDue(r.issued_at, r.not_after)).map((r) => r.id);
  }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      if (needsRenewal(this.deps.pki.panelCertificate().certPem))
        await this.deps.revocation.rotatePanelCertificate(SYSTEM);
      for (const id of this.due()) {
        if (this.deps.hosts.manager.status(id)?.state !== 'online') continue; // tried again next tick
        await this.renewHost(id);
      }
    } catch (e) {
      this.deps.logger.error({ err: (e as Error).message }, 'renewal check failed');
    } finally {
      this.running = false;
    }
  }

  /** Renews one host's certificate now. Audited either way. */
  async renewHost(hostId: string, actor: Actor = SYSTEM): Promise<RenewResult> {
    if (this.inFlight.has(hostId))
      return { ok: false, message: `A renewal of ${hostId} is already running.` };
    this.inFlight.add(hostId);
    const started = performance.now();
    const { hosts, pki, audit } = this.deps;
    const host = hosts.repo.get(hostId);
    const oldSerial = host?.cert_serial ?? null;
    const done = (r: RenewResult, extra: Record<string, unknown> = {}): RenewResult => {
      audit.write({
        actor,
        hostId,
        action: 'host certificate renew',
        params: { oldSerial, ...extra },
        ok: r.ok,
        errorCode: r.ok ? null : 'failed-precondition',
        message: r.ok ? null : r.message,
        durationMs: performance.now() - started,
      });
      if (r.ok) this.deps.logger.info({ hostId, serial: r.serial }, 'host certificate renewed');
      else this.deps.logger.warn({ hostId, err: r.message }, 'host certificate renewal failed');
      return r;
    };
    try {
      if (!host || host.status !== 'enrolled')
        return done({ ok: false, message: `Host ${hostId} is not enrolled.` });
      const csr = await hosts.manager.call(hostId, 'renew certificate', {});
      if (!csr.ok) return done({ ok: false, message: `The agent did not make a CSR: ${csr.error.message}` });
      let publicKey: CryptoKey;
      try {
        publicKey = await publicKeyFromCsr(csr.data.csrPem);
      } catch (e) {
        return done({ ok: false, message: `The agent's CSR was refused: ${(e as Error).message}` });
      }
      const issued = await pki.issueHostCertificate(hostId, publicKey, {
        notAfter: new Date(Date.now() + this.deps.certLifetimeMs),
      });
      const installed = await hosts.manager.call(hostId, 'install certificate', {
        certPem: issued.certPem,
        caPem: pki.ca.certPem,
      });
      if (!installed.ok) {
        // Lost reply (timeout, dropped link): the agent may serve the new certificate already, so
        // it stays valid; the next renewal supersedes whichever of the two is not current.
        const unknownOutcome = installed.error.code === 'timeout' || installed.error.code === 'unavailable';
        if (!unknownOutcome) pki.revoke(issued.serial, 'renewal not installed');
        return done(
          { ok: false, message: `The agent did not install the certificate: ${installed.error.message}` },
          { newSerial: issued.serial },
        );
      }
      if (!hosts.repo.get(hostId)) {
        // Removed while renewing: the new certificate must not outlive the host.
        pki.revoke(issued.serial, 'host removed');
        return done({ ok: false, message: `Host ${hostId} was removed during renewal.` });
      }
      hosts.repo.markEnrolled(hostId, issued.serial, issued.notAfter.getTime());
      // The previous certificate, and any left over from a renewal whose reply was lost.
      const superseded = this.deps.db
        .prepare(
          "SELECT serial FROM certificates WHERE kind = 'host' AND host_id = ? AND revoked_at IS NULL AND serial <> ?",
        )
        .all(hostId, issued.serial) as { serial: string }[];
      for (const s of superseded) pki.revoke(s.serial, 'superseded by renewal');
      this.deps.events.emit('hostsChanged');
      return done(
        { ok: true, serial: issued.serial, notAfter: issued.notAfter.getTime() },
        { newSerial: issued.serial, notAfter: issued.notAfter.toISOString() },
      );
    } finally {
      this.inFlight.delete(hostId);
    }
  }
}
