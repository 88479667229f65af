import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { certFingerprint, publicKeyFromCsr } from '../../shared/pki/index.ts';
import type { Db } from '../db/database.ts';
import type { Actor, AuditLog } from '../db/audit.ts';
import { HostsRepo, type HostRow } from '../db/hosts.ts';
import type { PanelEvents } from '../events.ts';
import type { PanelPki } from './pki-store.ts';
import type { HostRegistry } from './registry.ts';
import { EnrollmentError, parseHostAddress, parseHostMode, parseHostName } from './enrollment-input.ts';
import { JoinTokens, TOKEN_TTL_MS } from './enrollment-tokens.ts';
import { Revocation } from './revocation.ts';
import { findAgentRelease, oneLineUrl, servedCertificatePem, spkiPin } from '../http/agent-downloads.ts';
import { RenewalScheduler } from './renewal.ts';
import { modeSwitchSteps } from './host-mode.ts';

export { EnrollmentError } from './enrollment-input.ts';

/** A host switched between modes, with a join token for re-enrolling it (optional, see switchMode). */
export interface ModeSwitch extends NewHost {
  previous: { mode: 'forward' | 'reverse'; address: string; port: number };
  /** What the host's admin does now (server/hosts/host-mode.ts). */
  steps: string[];
}

export interface NewHost {
  host: HostRow;
  /** The join token: shown once, stored only as a hash. */
  token: string;
  expiresAt: number;
  /** The exact command to run on the host (with the agent installed). */
  command: string;
  /**
   * The one line that installs and enrolls (curl pinned to the panel's HTTPS key, piped to the
   * installer the panel serves); null when the panel has no agent release to serve.
   */
  installCommand: string | null;
  caPin: string;
}

/** What adding hosts and issuing tokens needs: the database and the CA (the CLI has no more). */
export interface HostAdmissionDeps {
  db: Db;
  audit: AuditLog;
  caPem: () => string;
  publicUrl: () => string;
  /**
   * The `--pinnedpubkey` of the panel's HTTPS certificate when the panel can serve the agent
   * release (GET /agent/install.sh), else null: then only the two-step command is given.
   */
  installPin?: () => string | null;
  tokenTtlMs?: number;
  /** The URL reverse-mode agents dial (wss://HOST:PORT), or null when the agent listener is off. */
  agentUrl?: () => string | null;
}

/** Quotes a shell word only when needed (the URL and token are plain; this is belt and braces). */
const shellWord = (s: string): string =>
  /^[A-Za-z0-9_:/.@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;

export function enrollCommand(publicUrl: string, token: string, caPin: string): string {
  return `ponio-agent enroll --panel ${shellWord(publicUrl.replace(/\/+$/, ''))} --token ${shellWord(token)} --ca-pin ${caPin}`;
}

/**
 * The one-line install + enrollment (docs/security.md "One-line install"): curl checks the
 * panel's HTTPS key against `spki` (`-k` only skips the CA check, which the host cannot do yet:
 * it does not know the panel CA), the installer it pipes to downloads the bundle the same way
 * and checks its SHA-256, then `ponio-agent enroll` pins the CA as before.
 */
export function installCommand(publicUrl: string, spki: string, token: string, caPin: string): string | null {
  const url = oneLineUrl(publicUrl);
  if (!url) return null;
  return `curl -fsS --pinnedpubkey ${shellWord(spki)} -k ${shellWord(`${url}/agent/install.sh`)} | sh -s -- --panel ${shellWord(url)} --token ${shellWord(token)} --ca-pin ${caPin}`;
}

/**
 * Adding hosts and their join tokens (no network, no certificate signing): used by the panel
 * and by the `ponio-panel host` CLI against the same database.
 */
export class HostAdmission {
  readonly repo: HostsRepo;
  readonly tokens: JoinTokens;

  constructor(private readonly deps: HostAdmissionDeps) {
    this.repo = new HostsRepo(deps.db);
    this.tokens = new JoinTokens(deps.db, deps.tokenTtlMs ?? TOKEN_TTL_MS);
  }

  caPin(): string {
    return certFingerprint(this.deps.caPem());
  }

  /** A host id from its name: the name in lower case, or with a suffix if that id was ever used. */
  private newHostId(name: string): string {
    const base = name.toLowerCase();
    const used = (id: string): boolean =>
      this.repo.get(id) !== null ||
      this.deps.db.prepare('SELECT 1 FROM certificates WHERE host_id = ? LIMIT 1').get(id) !== undefined ||
      this.deps.db.prepare('SELECT 1 FROM audit_log WHERE host_id = ? LIMIT 1').get(id) !== undefined;
    if (!used(base)) return base;
    // Never reuse the id of a removed host: its old (revoked) certificate names that id.
    for (let i = 0; i < 20; i++) {
      const id = `${base.slice(0, 56)}-${randomBytes(3).toString('hex')}`;
      if (!used(id)) return id;
    }
    throw new EnrollmentError(409, 'already-exists', 'Could not find a free host id; try another name.');
  }

  /** Creates a pending host and its first join token; returns the enrollment command. */
  addHost(
    actor: Actor,
    input: { name: unknown; address?: unknown; port?: unknown; mode?: unknown },
  ): NewHost {
    const name = parseHostName(input.name);
    const mode = parseHostMode(input.mode);
    // Reverse mode: the panel never connects, so the host has no address (the agent dials in).
    if (mode === 'reverse' && input.address !== undefined && input.address !== null && input.address !== '')
      throw new EnrollmentError(
        400,
        'invalid-argument',
        'A reverse-mode host has no address: it connects to the panel. Leave the address out.',
      );
    const { address, port } =
      mode === 'reverse' ? { address: '', port: 7443 } : parseHostAddress(input.address, input.port);
    if (this.repo.getByName(name))
      throw new EnrollmentError(409, 'already-exists', `A host named ${name} already exists.`);
    const id = this.newHostId(name);
    const { host, token, expiresAt } = this.deps.db.transaction(() => {
      const row = this.repo.insert({ id, name, address, port, mode });
      return { host: row, ...this.tokens.issue(id) };
    })();
    this.deps.audit.write({
      actor,
      hostId: id,
      action: 'host add',
      params: mode === 'reverse' ? { name, mode } : { name, address, port },
      ok: true,
    });
    return this.newHost(host, token, expiresAt);
  }

  /**
   * Issues a new join token for a host (revoking its unused ones). For an enrolled host this is
   * the admin's consent to enroll it again (new key, e.g. after a reinstall).
   */
  issueToken(actor: Actor, hostId: string): NewHost {
    const host = this.repo.get(hostId) ?? this.repo.getByName(hostId);
    if (!host)
      throw new EnrollmentError(404, 'not-found', `No host with id ${JSON.stringify(hostId.slice(0, 80))}.`);
    const { token, expiresAt } = this.tokens.issue(host.id);
    this.deps.audit.write({ actor, hostId: host.id, action: 'host token issue', params: {}, ok: true });
    return this.newHost(host, token, expiresAt);
  }

  private newHost(host: HostRow, token: string, expiresAt: number): NewHost {
    const caPin = this.caPin();
    const url = this.deps.publicUrl();
    let spki: string | null;
    try {
      spki = this.deps.installPin?.() ?? null;
    } catch {
      spki = null; // an unreadable certificate: the two-step command still works
    }
    return {
      host,
      token,
      expiresAt,
      caPin,
      command: enrollCommand(url, token, caPin),
      installCommand: spki ? installCommand(url, spki, token, caPin) : null,
    };
  }

  /**
   * Switches who opens a host's link: `forward` (the panel dials ADDRESS:PORT) or `reverse` (the
   * agent dials the panel's agent listener). The host keeps its certificate, which serves both
   * directions (serverAuth + clientAuth), so no re-enrollment is needed: the agent's config
   * changes (`connect` in reverse mode, `listen` in forward mode) and it restarts. A fresh join
   * token comes with the reply, so `ponio-agent enroll --force` can rewrite that config instead.
   */
  switchMode(
    actor: Actor,
    idOrName: string,
    input: { mode: unknown; address?: unknown; port?: unknown },
  ): ModeSwitch {
    const host = this.repo.get(idOrName) ?? this.repo.getByName(idOrName);
    if (!host)
      throw new EnrollmentError(
        404,
        'not-found',
        `No host with id ${JSON.stringify(idOrName.slice(0, 80))}.`,
      );
    if (input.mode === undefined || input.mode === null || input.mode === '')
      throw new EnrollmentError(400, 'invalid-argument', 'Say which mode: forward or reverse.');
    const mode = parseHostMode(input.mode);
    const hasAddress = input.address !== undefined && input.address !== null && input.address !== '';
    if (mode === 'reverse' && hasAddress)
      throw new EnrollmentError(
        400,
        'invalid-argument',
        'A reverse-mode host has no address: it connects to the panel. Leave the address out.',
      );
    const target =
      mode === 'reverse'
        ? { address: '', port: 7443 }
        : parseHostAddress(hasAddress ? input.address : undefined, input.port);
    if (
      host.mode === mode &&
      (mode === 'reverse' || (host.address === target.address && host.port === target.port))
    )
      throw new EnrollmentError(
        409,
        'failed-precondition',
        `Host ${host.name} is already in ${mode} mode${mode === 'forward' ? ` at ${target.address}:${target.port}` : ''}.`,
      );
    const previous = { mode: host.mode, address: host.address, port: host.port };
    const { token, expiresAt } = this.deps.db.transaction(() => {
      this.repo.update(host.id, { mode, ...target });
      return this.tokens.issue(host.id);
    })();
    this.deps.audit.write({
      actor,
      hostId: host.id,
      action: 'host mode',
      params: mode === 'reverse' ? { from: previous.mode, mode } : { from: previous.mode, mode, ...target },
      ok: true,
    });
    const row = this.repo.get(host.id) ?? host;
    const n = this.newHost(row, token, expiresAt);
    const command = `${n.command} --force`;
    return {
      ...n,
      previous,
      command,
      steps: modeSwitchSteps(row, this.deps.agentUrl?.() ?? null, command),
    };
  }

  /** Revokes a host's unused join tokens. */
  revokeTokens(actor: Actor, hostId: string): number {
    const host = this.repo.get(hostId);
    if (!host)
      throw new EnrollmentError(404, 'not-found', `No host with id ${JSON.stringify(hostId.slice(0, 80))}.`);
    const n = this.tokens.revokeForHost(host.id);
    this.deps.audit.write({
      actor,
      hostId: host.id,
      action: 'host token revoke',
      params: { revoked: n },
      ok: true,
    });
    return n;
  }
}

const enrollBody = z.strictObject({
  token: z.string().min(1).max(300),
  csr: z.string().min(1).max(10_000),
});

export interface EnrollmentDeps extends HostAdmissionDeps {
  pki: PanelPki;
  hosts: HostRegistry;
  events: PanelEvents;
  logger: Logger;
  revocation: Revocation;
  renewal: RenewalScheduler;
  /** Lifetime of host certificates in ms (90 days; short in tests). */
  certLifetimeMs: number;
}

export interface Enrolled {
  hostId: string;
  certificate: string;
  ca: string;
  port: number;
  notAfter: number;
  mode: 'forward' | 'reverse';
  /** Reverse mode: the panel's agent listener(s) the agent dials (wss://). */
  connect?: string[];
}

const ENROLL_ACTOR: Actor = { kind: 'system', name: 'enrollment', role: 'viewer' };

/**
 * The host lifecycle on the panel (design §3), one object on PanelContext (`ctx.enrollment`):
 * add a host and its token, enroll an agent's CSR, re-issue or revoke tokens, remove a host,
 * rotate the panel certificate, renew a host certificate.
 */
export class Enrollment extends HostAdmission {
  constructor(private readonly e: EnrollmentDeps) {
    super(e);
  }

  /**
   * Checks a join token and signs the agent's CSR. The certificate carries the identity of the
   * host the token was issued for (urn:ponio:host:<id>, its address) — never anything from the
   * CSR, so a token for host A can only ever yield A's certificate.
   */
  async enroll(input: unknown, remote: string): Promise<Enrolled> {
    const started = performance.now();
    let hostId: string | null = null;
    const fail = (err: EnrollmentError): never => {
      this.e.audit.write({
        actor: ENROLL_ACTOR,
        hostId,
        action: 'host enroll',
        params: { remote },
        ok: false,
        errorCode: err.code,
        message: err.message,
        durationMs: performance.now() - started,
      });
      throw err;
    };
    const body = enrollBody.safeParse(input);
    if (!body.success)
      return fail(
        new EnrollmentError(
          400,
          'invalid-argument',
          'An enrollment request is JSON { "token": "…", "csr": "-----BEGIN CERTIFICATE REQUEST-----…" }.',
        ),
      );
    const now = Date.now();
    const row = this.tokens.find(body.data.token);
    if (!row)
      return fail(
        new EnrollmentError(
          403,
          'permission-denied',
          'This join token is unknown. Copy the enrollment command again from the panel, or ask the admin for a new token.',
        ),
      );
    hostId = row.host_id;
    if (row.used_at !== null)
      return fail(
        new EnrollmentError(
          403,
          'permission-denied',
          'This join token has already been used (a token works once). To enroll this host again, the admin issues a new token for it.',
        ),
      );
    if (row.revoked_at !== null)
      return fail(
        new EnrollmentError(
          403,
          'permission-denied',
          'This join token was revoked by the admin. Ask for a new enrollment command.',
        ),
      );
    if (row.expires_at <= now)
      return fail(
        new EnrollmentError(
          403,
          'permission-denied',
          `This join token expired at ${new Date(row.expires_at).toISOString()} (tokens are valid for one hour). Ask the admin to issue a new token.`,
        ),
      );
    const host = this.repo.get(row.host_id);
    if (!host)
      return fail(
        new EnrollmentError(404, 'not-found', 'The host this token was issued for no longer exists.'),
      );
    const connect = host.mode === 'reverse' ? (this.e.agentUrl?.() ?? null) : null;
    if (host.mode === 'reverse' && !connect)
      return fail(
        new EnrollmentError(
          409,
          'failed-precondition',
          `Host ${host.name} is in reverse mode, but the panel's agent listener is off (agentListen); turn it on first.`,
        ),
      );
    // A host holding a live certificate is enrolled again only with a token the admin issued
    // after its last enrollment (renewals in between do not matter).
    const live = this.e.db
      .prepare(
        "SELECT serial FROM certificates WHERE kind = 'host' AND host_id = ? AND revoked_at IS NULL AND not_after > ? ORDER BY issued_at DESC LIMIT 1",
      )
      .get(host.id, now) as { serial: string } | undefined;
    const lastEnrolled = (
      this.e.db.prepare('SELECT MAX(used_at) AS at FROM join_tokens WHERE host_id = ?').get(host.id) as {
        at: number | null;
      }
    ).at;
    if (live && lastEnrolled !== null && row.created_at <= lastEnrolled)
      return fail(
        new EnrollmentError(
          409,
          'failed-precondition',
          `Host ${host.name} already holds a live certificate (serial ${live.serial}). To enroll it again, the admin issues a new token for it.`,
        ),
      );
    let publicKey: CryptoKey;
    try {
      publicKey = await publicKeyFromCsr(body.data.csr);
    } catch (e) {
      return fail(new EnrollmentError(400, 'invalid-argument', (e as Error).message));
    }
    // Claimed atomically: of two concurrent requests with one token, exactly one gets here.
    if (!this.tokens.claim(row.id))
      return fail(
        new EnrollmentError(
          403,
          'permission-denied',
          'This join token has already been used (a token works once).',
        ),
      );
    const issued = await this.e.pki.issueHostCertificate(host.id, publicKey, {
      notAfter: new Date(Date.now() + this.e.certLifetimeMs),
    });
    const superseded = this.e.db.transaction(() => {
      const old = this.e.db
        .prepare(
          "SELECT serial FROM certificates WHERE kind = 'host' AND host_id = ? AND revoked_at IS NULL AND serial <> ?",
        )
        .all(host.id, issued.serial) as { serial: string }[];
      for (const o of old)
        this.e.db
          .prepare(
            "UPDATE certificates SET revoked_at = ?, reason = 'superseded by a new enrollment' WHERE serial = ?",
          )
          .run(Date.now(), o.serial);
      this.repo.markEnrolled(host.id, issued.serial, issued.notAfter.getTime());
      return old.map((o) => o.serial);
    })();
    this.e.audit.write({
      actor: ENROLL_ACTOR,
      hostId: host.id,
      action: 'host enroll',
      params: { remote, serial: issued.serial, notAfter: issued.notAfter.toISOString(), superseded },
      ok: true,
      durationMs: performance.now() - started,
    });
    this.e.logger.info({ hostId: host.id, serial: issued.serial, remote }, 'host enrolled');
    const enrolled = this.repo.get(host.id);
    if (enrolled) this.e.hosts.connect(enrolled);
    this.e.events.emit('hostsChanged');
    return {
      hostId: host.id,
      certificate: issued.certPem,
      ca: this.e.pki.ca.certPem,
      port: host.port,
      notAfter: issued.notAfter.getTime(),
      mode: host.mode,
      ...(host.mode === 'reverse' && connect ? { connect: [connect] } : {}),
    };
  }

  /** Switches a host's mode (HostAdmission.switchMode) and re-links it in that mode at once. */
  override switchMode(
    actor: Actor,
    idOrName: string,
    input: { mode: unknown; address?: unknown; port?: unknown },
  ): ModeSwitch {
    const out = super.switchMode(actor, idOrName, input);
    this.e.hosts.disconnect(out.host.id);
    if (out.host.status === 'enrolled') this.e.hosts.connect(out.host);
    this.e.events.emit('hostsChanged');
    this.e.logger.info(
      { hostId: out.host.id, from: out.previous.mode, mode: out.host.mode },
      'host mode switched',
    );
    return out;
  }

  /** Removes a host: revokes its certificate, drops its connection at once, never reconnects. */
  removeHost(actor: Actor, idOrName: string): HostRow {
    return this.e.revocation.removeHost(actor, idOrName);
  }

  /** Rotates the panel's client certificate (old serial revoked and pushed to agents). */
  rotatePanelCertificate(actor: Actor): Promise<{ oldSerial: string; newSerial: string }> {
    return this.e.revocation.rotatePanelCertificate(actor);
  }

  /** Renews a host's certificate now over its mutual-TLS link. */
  renewHost(actor: Actor, hostId: string): ReturnType<RenewalScheduler['renewHost']> {
    return this.e.renewal.renewHost(hostId, actor);
  }
}

export interface HostLifecycle {
  enrollment: Enrollment;
  revocation: Revocation;
  renewal: RenewalScheduler;
  /** Starts the renewal scheduler, the revocation push on connect and the reconcile loop. */
  start(): void;
  stop(): void;
}

/** Builds the host lifecycle parts for server/main.ts (wiring only there). */
export function createHostLifecycle(d: {
  config: {
    hostCertLifetimeSeconds: number;
    renewalCheckSeconds: number;
    tlsCert?: string | undefined;
    agentDir?: string | undefined;
  };
  db: Db;
  pki: PanelPki;
  hosts: HostRegistry;
  audit: AuditLog;
  events: PanelEvents;
  logger: Logger;
  publicUrl: () => string;
  agentUrl?: () => string | null;
  /** Told after a host certificate was revoked (server/hosts/host-crl.ts). */
  onRevoked?: () => void;
}): HostLifecycle {
  const logger = d.logger.child({ part: 'enrollment' });
  const certLifetimeMs = d.config.hostCertLifetimeSeconds * 1000;
  const revocation = new Revocation({ ...d, logger });
  const renewal = new RenewalScheduler({
    ...d,
    logger,
    revocation,
    certLifetimeMs,
    checkIntervalMs: d.config.renewalCheckSeconds * 1000,
  });
  let pin: string | undefined;
  const enrollment = new Enrollment({
    ...d,
    logger,
    caPem: () => d.pki.ca.certPem,
    // The served HTTPS certificate is read once at start (server/main.ts); so is its pin.
    installPin: () =>
      findAgentRelease(d.config)
        ? (pin ??= spkiPin(servedCertificatePem(d.config, () => d.pki.serverTls().certPem)))
        : null,
    revocation,
    renewal,
    certLifetimeMs,
  });
  return {
    enrollment,
    revocation,
    renewal,
    start() {
      revocation.start();
      renewal.start();
    },
    stop() {
      renewal.stop();
      revocation.stop();
    },
  };
}
