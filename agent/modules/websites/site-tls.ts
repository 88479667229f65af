import { randomBytes, X509Certificate } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Website } from '../../../shared/protocol/events/websites.ts';
import { atomicWrite, readIfExists, resolveUnder } from '../../os/files.ts';
import type { AcmeIssuer } from './acme.ts';
import { certFacts } from './tls-check.ts';
import type { VhostMeta } from './vhost.ts';

/**
 * Where a site's certificate and key live (`<stateDir>/websites/certs/<domain>/`, the key 0600,
 * read by Apache's root parent), the ACME issuer, and the state shown in the dashboard: the
 * certificate's facts, when it is renewed, the last failure (`state.json`, data only).
 */

const stateSchema = z.strictObject({ lastError: z.string().nullable(), lastAttempt: z.number().nullable() });
type TlsState = z.infer<typeof stateSchema>;

export interface CertPaths {
  dir: string;
  cert: string;
  key: string;
}

export class SiteTls {
  constructor(
    readonly root: string,
    readonly issuer: AcmeIssuer,
    /** Outcomes of issuances and renewals, one `<domain>.json` each (not the certificates). */
    readonly stateRoot: string,
  ) {}

  private stateFile(domain: string): string {
    return resolveUnder(this.stateRoot, `${domain}.json`);
  }

  /**
   * A site's certificate files. Each new certificate gets new names (`id`): the vhost switching
   * to them is the one step that makes it live, so a kill can never leave Apache a certificate
   * and a key that do not match.
   */
  paths(domain: string, id: string): CertPaths {
    if (!/^[0-9a-f]{8,32}$/.test(id)) throw new Error('unusable certificate id');
    const dir = resolveUnder(this.root, domain);
    return { dir, cert: path.join(dir, `cert-${id}.pem`), key: path.join(dir, `key-${id}.pem`) };
  }

  dirOf(domain: string): string {
    return resolveUnder(this.root, domain);
  }

  async state(domain: string): Promise<TlsState> {
    const text = await readIfExists(this.stateFile(domain));
    const parsed = text === null ? null : stateSchema.safeParse(JSON.parse(text));
    return parsed?.success === true ? parsed.data : { lastError: null, lastAttempt: null };
  }

  /** Records the outcome of an issuance or renewal (informational, not part of the config). */
  async record(domain: string, error: string | null): Promise<void> {
    await fsp.mkdir(this.stateRoot, { recursive: true, mode: 0o700 });
    await atomicWrite(
      this.stateFile(domain),
      `${JSON.stringify({ lastError: error, lastAttempt: Date.now() })}\n`,
      {
        mode: 0o600,
      },
    );
  }

  /**
   * A name for a staged 0600 copy of a key: the journal's intent names the copy, never the key
   * (site-change.ts `ref` files); written after the intent, removed when the change is settled.
   */
  async stagedName(domain: string): Promise<string> {
    const dir = this.dirOf(domain);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    return path.join(dir, `.staged-${randomBytes(6).toString('hex')}.pem`);
  }

  async dropStaged(domain: string): Promise<void> {
    const dir = this.dirOf(domain);
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const n of names) if (n.startsWith('.staged-')) await fsp.rm(path.join(dir, n), { force: true });
  }

  /**
   * At start: temp files a killed agent left in the certificate directories.
   */
  async sweep(): Promise<void> {
    const sites = await fsp.readdir(this.root).catch(() => [] as string[]);
    for (const d of sites) {
      const dir = path.join(this.root, d);
      const names = await fsp.readdir(dir).catch(() => [] as string[]);
      for (const n of names)
        // Staged copies are kept: an unfinished change (settled after start) may need them.
        if (n.startsWith('.') && n.endsWith('.tmp')) await fsp.rm(path.join(dir, n), { force: true });
    }
  }

  /** The dashboard's and API's view of a site's HTTPS. */
  async describe(
    domain: string,
    meta: NonNullable<VhostMeta['https']>,
    url?: string,
  ): Promise<NonNullable<Website['https']>> {
    const text = await readIfExists(this.paths(domain, meta.id).cert);
    let certificate: NonNullable<Website['https']>['certificate'] = null;
    if (text !== null) {
      try {
        const facts = certFacts(new X509Certificate(text));
        certificate = { ...facts, renewAt: meta.mode === 'acme' ? renewAt(facts) : null };
      } catch {
        certificate = null;
      }
    }
    const st = await this.state(domain);
    return {
      mode: meta.mode,
      redirect: meta.redirect,
      hsts: meta.hsts,
      certificate,
      lastError: st.lastError,
      lastAttempt: st.lastAttempt,
      ...(url !== undefined ? { url } : {}),
    };
  }

  /** Whether an ACME certificate is due: at two thirds of its life (or it cannot be read). */
  async due(domain: string, id: string, now = Date.now()): Promise<boolean> {
    const text = await readIfExists(this.paths(domain, id).cert);
    if (text === null) return true;
    try {
      return now >= renewAt(certFacts(new X509Certificate(text)));
    } catch {
      return true;
    }
  }
}

export const newCertId = (): string => randomBytes(8).toString('hex');

export const renewAt = (f: { notBefore: number; notAfter: number }): number =>
  f.notBefore + Math.round(((f.notAfter - f.notBefore) * 2) / 3);
