import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { atomicWrite, readIfExists } from './os/files.ts';
import type { CallRecord } from './journal/journal.ts';

/**
 * The agent's certificate and key, and the key of a pending renewal, changed so that a kill at
 * any instant leaves the old certificate + key pair or the new pair in place, never one of each
 * (the agent could not start: docs/architecture.md, "Crash safety").
 *
 * - `renew certificate` writes the new key to `pendingKeyFile` (state dir, 0600) before it
 *   answers with the CSR, so a renewal survives a restart of the agent.
 * - `install certificate` records its intent (the certificate and the public key it is for),
 *   then writes the key, then the certificate, then removes the pending key. Until the pending
 *   key is removed the change can be completed from the pending key and the intent; an agent
 *   that starts with an unfinished install completes it (`settleInstall`) before it reads its
 *   TLS files.
 */
export interface TrustFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
  pendingKeyFile: string;
}

export const renewIntent = z.strictObject({ keySpki: z.string().min(1), csrPem: z.string().min(1) });
export const installIntent = z.strictObject({ keySpki: z.string().min(1), certPem: z.string().min(1) });
export const revocationsIntent = z.strictObject({ serials: z.array(z.string()) });
export type InstallIntent = z.infer<typeof installIntent>;

/** The public key (SPKI DER, base64) of a private key, a public key or a certificate, or null. */
export function spkiOf(pem: string): string | null {
  try {
    const key = pem.includes('CERTIFICATE')
      ? new X509Certificate(pem).publicKey
      : createPublicKey(pem.includes('PRIVATE') ? createPrivateKey(pem) : pem);
    return key.export({ type: 'spki', format: 'der' }).toString('base64');
  } catch {
    return null;
  }
}

/** The pending renewal key, if one is stored and is a private key. */
export function readPendingKey(file: string): string | null {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  return pem.includes('PRIVATE') && spkiOf(pem) !== null ? pem : null;
}

export async function writePendingKey(file: string, keyPem: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await atomicWrite(file, keyPem, { mode: 0o600 });
}

/** Writes the new pair (key first) and drops the pending key: the install's change. */
export async function writePair(files: TrustFiles, keyPem: string, certPem: string): Promise<void> {
  await fsp.mkdir(path.dirname(files.keyFile), { recursive: true, mode: 0o700 });
  await atomicWrite(files.keyFile, keyPem, { mode: 0o600 });
  await atomicWrite(files.certFile, certPem, { mode: 0o644 });
  await fsp.rm(files.pendingKeyFile, { force: true });
}

/**
 * Completes an interrupted `install certificate` (idempotent): `applied` when the new pair is
 * (now) in place, `absent` when nothing of it was written (the old pair, which matches). Throws
 * when the files hold neither pair and the pending key is gone (not a state PonIO makes).
 */
export async function settleInstall(files: TrustFiles, intent: InstallIntent): Promise<'applied' | 'absent'> {
  const cert = await readIfExists(files.certFile);
  const key = await readIfExists(files.keyFile);
  const done = cert === intent.certPem && key !== null && spkiOf(key) === intent.keySpki;
  if (done) {
    await fsp.rm(files.pendingKeyFile, { force: true });
    return 'applied';
  }
  const pending = readPendingKey(files.pendingKeyFile);
  if (pending !== null && spkiOf(pending) === intent.keySpki) {
    await writePair(files, pending, intent.certPem);
    return 'applied';
  }
  if (cert !== null && key !== null && spkiOf(cert) === spkiOf(key)) return 'absent';
  throw new Error(
    `the certificate ${files.certFile} and the key ${files.keyFile} do not match, and the renewal key they could be completed with is gone`,
  );
}

/**
 * Before the agent reads its TLS files: completes every install a killed agent left unfinished
 * (its journal record stays `running`; recovery records the outcome later).
 */
export async function settleInstalls(files: TrustFiles, unfinished: readonly CallRecord[]): Promise<void> {
  for (const rec of unfinished) {
    if (rec.event !== 'install certificate' || rec.intent === undefined) continue;
    const intent = installIntent.safeParse(rec.intent);
    if (intent.success) await settleInstall(files, intent.data);
  }
}
