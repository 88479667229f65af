// The crash cases of the system module's mutations, the trust events (run by
// test/system/crash-system.test.ts, harness test/helpers/crash.ts): renew certificate (the new
// key kept pending), install certificate (key + certificate replaced) and set revocations.
// After each kill and restart the agent's files are as before the call or as after it — never a
// certificate with another key — and the certificate the agent serves is the one on disk (the
// harness's restart also proves the panel can connect again).
import { X509Certificate, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import tls from 'node:tls';
import { issueCertificate } from '../../../shared/pki/index.ts';
import { publicKeyFromCsr } from '../../../shared/pki/csr.ts';
import { spkiOf } from '../../../agent/trust-files.ts';
import { crashCase, crashSuite, type CrashHost } from '../../helpers/crash.ts';

/** A certificate issued for the pending renewal key (install's parameters), and another one. */
let planned: { certPem: string; otherPem: string } | null = null;
const serials = (n: number): string[] =>
  Array.from({ length: n }, () => randomBytes(8).toString('hex').toUpperCase());
const S1 = serials(2);
const S2 = serials(1);

const read = (f: string): Promise<string | null> => fsp.readFile(f, 'utf8').catch(() => null);
const pendingFile = (h: CrashHost): string => h.state('renewal.key');

/** The certificate the agent serves (over TLS, with the panel's client certificate). */
function served(h: CrashHost): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: h.port,
      cert: h.pki.panel.certPem,
      key: h.pki.panel.keyPem,
      ca: h.pki.ca.certPem,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    s.once('secureConnect', () => {
      const raw = s.getPeerCertificate().raw;
      s.destroy();
      resolve(new X509Certificate(raw).toString());
    });
    s.once('error', reject);
  });
}

/** Names a certificate (or key) by what it is to the test. */
function label(pem: string | null, h: CrashHost): string {
  if (pem === null) return 'none';
  const k = spkiOf(pem);
  if (k === spkiOf(h.files.certPem)) return 'original';
  if (planned && k === spkiOf(planned.certPem)) return 'renewal';
  return 'other';
}

/** The original certificate and key back (files rewritten, agent restarted), no pending renewal. */
async function original(h: CrashHost): Promise<void> {
  const cert = await read(h.files.certFile);
  const key = await read(h.files.keyFile);
  const pending = await read(pendingFile(h));
  if (cert === h.files.certPem && key === h.files.keyPem && pending === null) return;
  await fsp.writeFile(h.files.keyFile, h.files.keyPem, { mode: 0o600 });
  await fsp.writeFile(h.files.certFile, h.files.certPem);
  await fsp.rm(pendingFile(h), { force: true });
  await h.restart();
}

/** The original pair and a pending renewal, with a certificate issued for it (`planned`). */
async function renewing(h: CrashHost): Promise<void> {
  await original(h);
  const { csrPem } = await h.ok('renew certificate', {});
  const publicKey = await publicKeyFromCsr(csrPem);
  const issue = async (): Promise<string> =>
    (await issueCertificate({ ca: h.pki.ca, role: { kind: 'host', hostId: h.hostId }, publicKey })).certPem;
  planned = { certPem: await issue(), otherPem: await issue() };
}

export default crashSuite({
  name: 'system',
  requires() {
    /* only the agent itself */
  },
  modules: () => ({}),
  async snapshot(h) {
    const cert = await read(h.files.certFile);
    const key = await read(h.files.keyFile);
    const revoked = await read(h.state('revoked.json'));
    return {
      cert: label(cert, h),
      key: label(key, h),
      pair: cert !== null && key !== null && spkiOf(cert) === spkiOf(key),
      pending: label(await read(pendingFile(h)), h),
      served: label(await served(h), h),
      revoked: revoked === null ? null : (JSON.parse(revoked) as string[]),
    };
  },
  cases: [
    crashCase({ event: 'renew certificate', params: () => ({}), setup: original }),
    crashCase({
      event: 'install certificate',
      params: (h) => ({ certPem: planned?.certPem ?? '', caPem: h.pki.ca.certPem }),
      otherParams: (h) => ({ certPem: planned?.otherPem ?? '', caPem: h.pki.ca.certPem }),
      setup: renewing,
    }),
    crashCase({
      event: 'set revocations',
      params: () => ({ serials: [...S1, ...S2] }),
      otherParams: () => ({ serials: S2 }),
      setup: async (h) => {
        await h.ok('set revocations', { serials: S1 });
      },
    }),
  ],
});
