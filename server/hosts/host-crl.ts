import type { Logger } from 'pino';
import { createCrl, CRL_VALID_MS } from '../../shared/pki/crl.ts';
import type { CaMaterial } from '../../shared/pki/index.ts';

export interface HostCrlOptions {
  ca: () => CaMaterial;
  /** Revoked host-certificate serials (a removed host's certificate is revoked too). */
  revoked: () => ReadonlySet<string>;
  logger: Logger;
  /** How often the revoked set is compared with the signed one (CLI removals: another process). */
  pollMs?: number;
}

/**
 * The CRL of revoked host certificates that the agent listener keeps in its TLS secure context,
 * so OpenSSL refuses a revoked (or removed) host's certificate during the handshake, before the
 * connection reaches any PonIO code. Re-signed when the revoked set changes (at once through
 * {@link refresh}, and within `pollMs` for changes made by another process) and a day before it
 * would expire (an expired CRL would make OpenSSL refuse every agent).
 */
export class HostCrl {
  private pem = '';
  private key = '';
  private signedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<boolean> | null = null;
  private again = false;

  constructor(private readonly opts: HostCrlOptions) {}

  /** The current CRL (PEM); empty until the first {@link refresh}. */
  current(): string {
    return this.pem;
  }

  /** Re-signs the CRL if the revoked set changed or it is old; resolves true when it changed. */
  refresh(): Promise<boolean> {
    if (this.running) {
      this.again = true; // a change seen while signing is picked up right after
      return this.running;
    }
    // Cleared in a later microtask, never before it is set (sign() may finish synchronously).
    const p = this.sign().finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }

  private async sign(): Promise<boolean> {
    let changed = false;
    do {
      this.again = false;
      const serials = [...this.opts.revoked()].sort();
      const key = serials.join(',');
      const stale = Date.now() - this.signedAt > CRL_VALID_MS - 86_400_000;
      if (key === this.key && this.pem && !stale) continue;
      this.pem = await createCrl(this.opts.ca(), serials);
      this.key = key;
      this.signedAt = Date.now();
      changed = true;
      this.opts.logger.info({ revoked: serials.length }, 'host certificate revocation list signed');
    } while (this.again);
    return changed;
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.refresh().catch((e: unknown) =>
        this.opts.logger.error({ err: (e as Error).message }, 'could not sign the revocation list'),
      );
    }, this.opts.pollMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
