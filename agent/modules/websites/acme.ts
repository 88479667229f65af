import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import * as acme from 'acme-client';
import { z } from 'zod';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { atomicWrite, readIfExists, resolveUnder } from '../../os/files.ts';

/**
 * Certificates from an ACME CA (RFC 8555) with `acme-client`, HTTP-01 challenges answered by the
 * host's own Apache: the token is written to a directory every vhost aliases at
 * `/.well-known/acme-challenge/` (apache-config.ts), removed afterwards. Let's Encrypt by
 * default; any ACME directory (and a CA bundle for a private ACME CA's TLS) per host in the
 * agent config: `"modules": { "websites": { "acme": { "directoryUrl", "caBundle", "email" } } }`.
 * Why not mod_md: docs/websites.md ("HTTPS").
 */

export const acmeSettingsSchema = z.strictObject({
  directoryUrl: z
    .url({ protocol: /^https$/ })
    .max(2000)
    .optional(),
  /** PEM file of the CA(s) the ACME server's own TLS certificate chains to (private ACME CA). */
  caBundle: z.string().max(4096).optional(),
  email: z.email().max(254).optional(),
  /** How often the agent looks for certificates due for renewal (ms; default 1 h). */
  renewCheckMs: z.number().int().min(1000).max(86_400_000).optional(),
});
export type AcmeSettings = z.infer<typeof acmeSettingsSchema>;

const portSchema = z.number().int().min(1).max(65535);
export const websitesSettingsSchema = z
  .strictObject({
    acme: acmeSettingsSchema.optional(),
    /** Sandbox only: the private Apache's ports (default: free ones picked at start). */
    sandboxPorts: z.strictObject({ http: portSchema, https: portSchema }).optional(),
  })
  .optional();

export const LETS_ENCRYPT = acme.directory.letsencrypt.production;

export interface Issued {
  cert: string;
  key: string;
}

export class AcmeIssuer {
  readonly directoryUrl: string;
  private readonly agent: https.Agent | undefined;

  constructor(
    private readonly settings: AcmeSettings,
    /** Where the account key is kept (0600). */
    readonly stateDir: string,
    /** Served by Apache at /.well-known/acme-challenge/. */
    readonly challengeDir: string,
  ) {
    this.directoryUrl = settings.directoryUrl ?? LETS_ENCRYPT;
    this.agent =
      settings.caBundle !== undefined
        ? new https.Agent({ ca: readFileSync(settings.caBundle, 'utf8'), keepAlive: false })
        : undefined;
    // acme-client talks through one axios instance: this agent's TLS trust for the ACME server.
    if (this.agent) acme.axios.defaults.httpsAgent = this.agent;
  }

  private accountFile(ext: string): string {
    const name = `account-${createHash('sha256').update(this.directoryUrl).digest('hex').slice(0, 16)}.${ext}`;
    return resolveUnder(this.stateDir, name);
  }

  private async accountKey(): Promise<Buffer> {
    const file = this.accountFile('pem');
    const have = await readIfExists(file);
    if (have !== null) return Buffer.from(have);
    await fsp.mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    await atomicWrite(file, key, { mode: 0o600 });
    return key;
  }

  /** A client with its account registered (once per CA; the account URL is kept next to its key). */
  private async client(): Promise<acme.Client> {
    const opts = {
      directoryUrl: this.directoryUrl,
      accountKey: await this.accountKey(),
      backoffAttempts: 8,
      backoffMin: 200,
      backoffMax: 2000,
    };
    const urlFile = this.accountFile('url');
    const known = (await readIfExists(urlFile))?.trim();
    if (known !== undefined && /^https:\/\/\S+$/.test(known))
      return new acme.Client({ ...opts, accountUrl: known });
    const client = new acme.Client(opts);
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(this.settings.email !== undefined ? { contact: [`mailto:${this.settings.email}`] } : {}),
    });
    await atomicWrite(urlFile, `${client.getAccountUrl()}\n`, { mode: 0o600 });
    return client;
  }

  /** A new key and certificate for `names` (the first is the subject); throws for the admin. */
  async issue(names: readonly string[]): Promise<Issued> {
    const [first] = names;
    if (first === undefined) throw new Error('no names to certify');
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: first, altNames: [...names] },
      await acme.crypto.createPrivateEcdsaKey('P-256'),
    );
    await fsp.mkdir(this.challengeDir, { recursive: true, mode: 0o755 });
    const made = new Set<string>();
    try {
      const client = await this.client();
      const cert = await client.auto({
        csr,
        termsOfServiceAgreed: true,
        ...(this.settings.email !== undefined ? { email: this.settings.email } : {}),
        challengePriority: ['http-01'],
        // The CA checks from outside; a pre-check from the host itself proves nothing.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          const file = this.tokenFile(challenge.token);
          // Transient and public: a plain write (the directory is emptied at every start).
          made.add(file);
          await fsp.writeFile(file, keyAuthorization, { mode: 0o644 });
        },
        challengeRemoveFn: async (_authz, challenge) => {
          const file = this.tokenFile(challenge.token);
          await fsp.rm(file, { force: true });
          made.delete(file);
        },
      });
      return { cert, key: key.toString() };
    } catch (e) {
      throw new RpcError(
        'failed-precondition',
        `The ACME CA (${this.directoryUrl}) did not issue a certificate for ${names.join(', ')}: ${acmeMessage(e)}`,
      );
    } finally {
      for (const f of made) await fsp.rm(f, { force: true });
    }
  }

  /** At start: challenge tokens a killed agent left are of no use to anyone. */
  async clearChallenges(): Promise<void> {
    await fsp.rm(this.challengeDir, { recursive: true, force: true });
  }

  private tokenFile(token: string): string {
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(token))
      throw new Error('the ACME CA sent an unusable challenge token');
    return resolveUnder(this.challengeDir, token);
  }
}

/** The CA's problem detail (RFC 7807) or the transport error, for the admin. */
function acmeMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/\s+/g, ' ').slice(0, 600);
}

export const challengeDirOf = (wwwRoot: string): string => path.join(wwwRoot, '.ponio-acme-challenge');
