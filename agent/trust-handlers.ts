import { X509Certificate, createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { RpcError } from '../shared/protocol/errors.ts';
import { HOST_URI_PREFIX } from '../shared/pki/identity.ts';
import { sanUris, verifyPeerCertificate } from '../shared/pki/verify.ts';
import { normaliseSerial } from '../shared/pki/serial.ts';
import type { Handler, Recovered } from './modules/types.ts';
import {
  installIntent,
  readPendingKey,
  renewIntent,
  revocationsIntent,
  settleInstall,
  spkiOf,
  writePair,
  writePendingKey,
  type TrustFiles,
} from './trust-files.ts';
import type { AgentLinks } from './link.ts';
import type { RevocationList } from './trust.ts';

export type TrustEvent = 'renew certificate' | 'install certificate' | 'set revocations';
export type TrustHandlers = { [E in TrustEvent]: Handler<E> };

/** The trust events' handlers and their part of the system module's crash safety. */
export interface Trust {
  handlers: TrustHandlers;
  /** Completes or undoes an interrupted trust event (the system module's recover). */
  recover(event: TrustEvent, intent: unknown): Promise<Recovered>;
  /** Where the trust events write files atomically (temp files swept at start). */
  writesIn(): string[];
}

export interface TrustDeps {
  files: TrustFiles;
  /** The agent's links to the panel (whichever side dialed): their TLS material changes here. */
  links: AgentLinks;
  revocations: RevocationList;
  logger: Logger;
  /** Delay before dropping connections after a revocation push, so the ack goes out first. */
  enforceDelayMs?: number;
}

/** The SAN URI urn:ponio:host:<id> of a certificate, or null. */
function hostIdentity(certPem: string): string | null {
  return sanUris(new X509Certificate(certPem)).find((u) => u.startsWith(HOST_URI_PREFIX)) ?? null;
}

const fingerprint = (pem: string): string =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');

const fingerprintOr = (pem: string): string | null => {
  try {
    return fingerprint(pem);
  } catch {
    return null;
  }
};

const spki = (pem: string): string => spkiOf(pem) ?? '';

/** The reply of `install certificate` for a certificate. */
const installed = (cert: X509Certificate): { serial: string; notAfter: number } => ({
  serial: normaliseSerial(cert.serialNumber),
  notAfter: new Date(cert.validTo).getTime(),
});

/**
 * The agent's side of certificate renewal and revocation push (design §3). They act on the
 * agent's links (link.ts), not on a transport, so they work the same whether the panel dialed
 * the agent or the agent dialed the panel; agent/main.ts wires them into the router under the
 * 'system' module.
 *
 * - `renew certificate`: a new key is generated here and kept pending (in the state directory,
 *   0600, so a renewal survives a restart); only its CSR leaves the host.
 * - `install certificate`: the certificate must be for the pending key, chain to the pinned CA
 *   (the CA cannot be swapped this way) and carry this host's identity; key and certificate are
 *   written atomically and used at once (`setTls`), open connections stay up.
 * - `set revocations`: stores the revoked panel serials and drops connections that use one.
 *
 * Each records its intent in the journal before it writes (trust-files.ts has the rules), so a
 * killed agent comes back with the old certificate and key or the new ones.
 */
export function createTrustHandlers(deps: TrustDeps): Trust {
  const stored = readPendingKey(deps.files.pendingKeyFile);
  let pending: { keyPem: string } | null = stored !== null ? { keyPem: stored } : null;
  const log = deps.logger.child({ part: 'trust' });

  const handlers: TrustHandlers = {
    'renew certificate': async (_req, ctx) => {
      // Loaded on demand: the certificate library is not needed for the agent to start.
      const { createCsr } = await import('../shared/pki/csr.ts');
      const { csrPem, keyPem } = await createCsr('PonIO agent');
      await ctx.intent({ keySpki: spki(keyPem), csrPem });
      await writePendingKey(deps.files.pendingKeyFile, keyPem);
      pending = { keyPem };
      log.info('generated a new key for certificate renewal');
      return { csrPem };
    },

    'install certificate': async (req, ctx) => {
      if (!pending)
        throw new RpcError(
          'failed-precondition',
          'No renewal is pending on this agent; ask for "renew certificate" first.',
        );
      const now = deps.links.tls;
      if (fingerprintOr(req.caPem) !== fingerprint(now.caPem))
        throw new RpcError(
          'failed-precondition',
          'The CA sent with the certificate is not the CA this agent trusts; a CA change needs a new enrollment.',
        );
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(req.certPem);
      } catch {
        throw new RpcError('invalid-argument', 'The certificate is not a PEM X.509 certificate.');
      }
      const ca = new X509Certificate(now.caPem);
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
        throw new RpcError('failed-precondition', 'The certificate is not signed by the pinned CA.');
      const t = Date.now();
      if (t < new Date(cert.validFrom).getTime() || t > new Date(cert.validTo).getTime())
        throw new RpcError('failed-precondition', 'The certificate is not valid now.');
      if (cert.publicKey.export({ type: 'spki', format: 'der' }).toString('base64') !== spki(pending.keyPem))
        throw new RpcError('failed-precondition', 'The certificate is not for the key this agent generated.');
      const want = hostIdentity(now.certPem);
      const got = hostIdentity(req.certPem);
      if (!want || want !== got)
        throw new RpcError(
          'failed-precondition',
          `The certificate identifies ${got ?? 'no host'}, but this agent is ${want ?? 'unknown'}.`,
        );
      // The same rules the panel applies to this agent (design §3), key usage included.
      const rules = verifyPeerCertificate(cert, {
        caPem: now.caPem,
        expect: { kind: 'host', hostId: want.slice(HOST_URI_PREFIX.length) },
      });
      if (!rules.ok)
        throw new RpcError('failed-precondition', `The renewed certificate was refused: ${rules.reason}.`);
      const keyPem = pending.keyPem;
      // Key first, then certificate, then the pending key goes; each step is atomic, and until
      // the last one an interrupted install is completed at the next start (settleInstall).
      await ctx.intent({ keySpki: spki(keyPem), certPem: req.certPem });
      await writePair(deps.files, keyPem, req.certPem);
      pending = null;
      deps.links.setTls({ certPem: req.certPem, keyPem, caPem: now.caPem });
      const reply = installed(cert);
      log.info({ serial: reply.serial, notAfter: cert.validTo }, 'installed a renewed certificate');
      return reply;
    },

    'set revocations': async (req, ctx) => {
      await ctx.intent({ serials: req.serials });
      await deps.revocations.replace(req.serials);
      const count = deps.revocations.get().size;
      log.info({ count }, 'revoked panel serials updated');
      // After the ack has gone out: drop any connection whose certificate is now revoked.
      setTimeout(() => deps.links.enforceRevocations(), deps.enforceDelayMs ?? 200).unref();
      return { count };
    },
  };

  return {
    handlers,
    async recover(event, intent) {
      switch (event) {
        case 'renew certificate': {
          // Done once the pending key is the new one (the CSR answers for it).
          const it = renewIntent.parse(intent);
          const now = readPendingKey(deps.files.pendingKeyFile);
          pending = now !== null ? { keyPem: now } : null;
          return now !== null && spki(now) === it.keySpki
            ? { outcome: 'applied', data: { csrPem: it.csrPem } }
            : { outcome: 'absent' };
        }
        case 'install certificate': {
          // Already completed before the TLS files were read (agent/main.ts); this tells which.
          const it = installIntent.parse(intent);
          const r = await settleInstall(deps.files, it);
          if (r === 'absent') return { outcome: 'absent' };
          pending = null;
          return { outcome: 'applied', data: installed(new X509Certificate(it.certPem)) };
        }
        case 'set revocations': {
          // Forward: a revocation the panel pushed takes effect.
          const it = revocationsIntent.parse(intent);
          await deps.revocations.replace(it.serials);
          return { outcome: 'applied', data: { count: deps.revocations.get().size } };
        }
      }
    },
    writesIn: () =>
      [deps.files.certFile, deps.files.keyFile, deps.files.pendingKeyFile].map((f) => path.dirname(f)),
  };
}
