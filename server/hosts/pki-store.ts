import { promises as fsp } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import tls from 'node:tls';
import {
  certFingerprint,
  createCa,
  issueCertificate,
  normaliseSerial,
  PANEL_TLS_NAME,
  type CaMaterial,
  type IssuedCert,
} from '../../shared/pki/index.ts';
import type { Db } from '../db/database.ts';
import type { PanelTls } from './connection-manager.ts';

async function readPair(dir: string, name: string): Promise<{ certPem: string; keyPem: string } | null> {
  try {
    const [certPem, keyPem] = await Promise.all([
      fsp.readFile(path.join(dir, `${name}.crt`), 'utf8'),
      fsp.readFile(path.join(dir, `${name}.key`), 'utf8'),
    ]);
    return { certPem, keyPem };
  } catch {
    return null;
  }
}

async function writePair(
  dir: string,
  name: string,
  pair: { certPem: string; keyPem: string },
): Promise<void> {
  await fsp.writeFile(path.join(dir, `${name}.key`), pair.keyPem, { mode: 0o600 });
  await fsp.chmod(path.join(dir, `${name}.key`), 0o600);
  await fsp.writeFile(path.join(dir, `${name}.crt`), pair.certPem, { mode: 0o644 });
}

const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1';
/** Whether a panel certificate can serve the agent listener (reverse mode): it allows serverAuth. */
export const servesAgents = (pem: string): boolean =>
  (new X509Certificate(pem).keyUsage ?? []).includes(SERVER_AUTH_OID);

/** True when a certificate has passed two thirds of its life (time to renew). */
export function needsRenewal(certPem: string, now = Date.now()): boolean {
  const c = new X509Certificate(certPem);
  const from = new Date(c.validFrom).getTime();
  const to = new Date(c.validTo).getTime();
  return now >= from + ((to - from) * 2) / 3;
}

/**
 * The panel's PKI on disk (data dir `pki/`, keys 0600): its CA (created on first start), its
 * client certificate for agents (urn:ponio:panel) and the HTTPS server certificate. Every issued
 * certificate is recorded in the `certificates` table so it can be revoked.
 */
export class PanelPki {
  private constructor(
    private readonly dir: string,
    private readonly db: Db,
    private caMat: CaMaterial,
    private panel: { certPem: string; keyPem: string },
    private server: { certPem: string; keyPem: string },
  ) {}

  static async load(
    dataDir: string,
    db: Db,
    serverNames: { dns: string[]; ips: string[] },
  ): Promise<PanelPki> {
    const dir = path.join(dataDir, 'pki');
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    let ca = await readPair(dir, 'ca');
    if (!ca) {
      ca = await createCa();
      await writePair(dir, 'ca', ca);
    }
    const caMat: CaMaterial = ca;
    const record = (kind: 'panel' | 'server', c: IssuedCert): void => {
      db.prepare(
        'INSERT OR IGNORE INTO certificates (serial, kind, host_id, issued_at, not_after) VALUES (?, ?, NULL, ?, ?)',
      ).run(c.serial, kind, Date.now(), c.notAfter.getTime());
    };
    let panel = await readPair(dir, 'panel');
    // A panel certificate from before serverAuth was added is replaced too (agents trust the CA
    // and urn:ponio:panel, not one certificate, so they accept the new one).
    if (!panel || needsRenewal(panel.certPem) || !servesAgents(panel.certPem)) {
      const c = await issueCertificate({ ca: caMat, role: { kind: 'panel' }, days: 90 });
      record('panel', c);
      panel = c;
      await writePair(dir, 'panel', panel);
    }
    let server = await readPair(dir, 'server');
    const wanted = [
      ...serverNames.dns.map((d) => `DNS:${d}`),
      ...serverNames.ips.map((i) => `IP Address:${i}`),
    ];
    const hasNames = (pem: string): boolean => {
      const san = new X509Certificate(pem).subjectAltName ?? '';
      return wanted.every((w) => san.includes(w));
    };
    if (!server || needsRenewal(server.certPem) || !hasNames(server.certPem)) {
      const c = await issueServerCert(caMat, serverNames);
      record('server', c);
      server = c;
      await writePair(dir, 'server', server);
    }
    return new PanelPki(dir, db, caMat, panel, server);
  }

  get ca(): CaMaterial {
    return this.caMat;
  }

  /** `sha256:HEX` of the CA certificate: what `ponio-agent enroll --ca-pin` checks. */
  caFingerprint(): string {
    return certFingerprint(this.caMat.certPem);
  }

  clientTls(): PanelTls {
    return { certPem: this.panel.certPem, keyPem: this.panel.keyPem, caPem: this.caMat.certPem };
  }

  panelCertificate(): { certPem: string; keyPem: string } {
    return this.panel;
  }

  serverTls(): { certPem: string; keyPem: string } {
    return this.server;
  }

  /**
   * The HTTPS server's SNI hook: an agent that enrolls asks for PANEL_TLS_NAME and gets the
   * panel's own certificate (urn:ponio:panel, from the CA it pinned), so it never has to accept
   * a certificate by hostname; every other name gets the browser-facing certificate (undefined =
   * the server's default). Follows panel certificate rotation.
   */
  sniCallback(): (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void {
    let cached: { pem: string; ctx: tls.SecureContext } | null = null;
    return (servername, cb) => {
      if (servername !== PANEL_TLS_NAME) {
        cb(null, undefined);
        return;
      }
      if (cached?.pem !== this.panel.certPem)
        cached = {
          pem: this.panel.certPem,
          ctx: tls.createSecureContext({ cert: this.panel.certPem, key: this.panel.keyPem }),
        };
      cb(null, cached.ctx);
    };
  }

  /** Issues a fresh panel client certificate (rotation); the caller revokes the old serial. */
  async rotatePanelCertificate(days = 90): Promise<{ oldSerial: string; newSerial: string }> {
    const oldSerial = normaliseSerial(new X509Certificate(this.panel.certPem).serialNumber);
    const c = await issueCertificate({ ca: this.caMat, role: { kind: 'panel' }, days });
    this.db
      .prepare(
        "INSERT INTO certificates (serial, kind, host_id, issued_at, not_after) VALUES (?, 'panel', NULL, ?, ?)",
      )
      .run(c.serial, Date.now(), c.notAfter.getTime());
    this.panel = c;
    await writePair(this.dir, 'panel', c);
    return { oldSerial, newSerial: c.serial };
  }

  /**
   * Issues a host certificate for a public key (from a CSR); identity from the panel's record. It
   * names only urn:ponio:host:<id> (the panel checks agents by that URI, never by a hostname), so
   * it is no TLS server certificate for any name an operator could pick.
   */
  async issueHostCertificate(
    hostId: string,
    publicKey: CryptoKey,
    opts: { days?: number; notAfter?: Date } = {},
  ): Promise<IssuedCert> {
    const c = await issueCertificate({
      ca: this.caMat,
      publicKey,
      role: { kind: 'host', hostId },
      ...(opts.days !== undefined ? { days: opts.days } : {}),
      ...(opts.notAfter !== undefined ? { notAfter: opts.notAfter } : {}),
    });
    this.db
      .prepare(
        "INSERT INTO certificates (serial, kind, host_id, issued_at, not_after) VALUES (?, 'host', ?, ?, ?)",
      )
      .run(c.serial, hostId, Date.now(), c.notAfter.getTime());
    return c;
  }

  revoke(serial: string, reason: string): void {
    this.db
      .prepare(
        'UPDATE certificates SET revoked_at = COALESCE(revoked_at, ?), reason = COALESCE(reason, ?) WHERE serial = ?',
      )
      .run(Date.now(), reason, normaliseSerial(serial));
  }

  /** Revoked panel-certificate serials (pushed to agents). */
  revokedPanelSerials(): string[] {
    return (
      this.db
        .prepare("SELECT serial FROM certificates WHERE kind = 'panel' AND revoked_at IS NOT NULL")
        .all() as { serial: string }[]
    ).map((r) => r.serial);
  }

  isRevoked(serial: string): boolean {
    const r = this.db
      .prepare('SELECT revoked_at FROM certificates WHERE serial = ?')
      .get(normaliseSerial(serial)) as { revoked_at: number | null } | undefined;
    return r?.revoked_at !== null && r?.revoked_at !== undefined;
  }
}

async function issueServerCert(ca: CaMaterial, names: { dns: string[]; ips: string[] }): Promise<IssuedCert> {
  // serverAuth only, the panel's own names, no PonIO identity URI.
  return issueCertificate({ ca, role: { kind: 'server' }, dnsNames: names.dns, ips: names.ips, days: 365 });
}
