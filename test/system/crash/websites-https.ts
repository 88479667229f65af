// The crash cases of HTTPS per site (run by test/system/crash-websites-https.test.ts, harness
// test/helpers/crash.ts; the ACME CA a real pebble on loopback): set website https (own
// certificate, ACME, off) and renew website certificate; after each kill and restart the vhost,
// the certificate files, `apache2 -t` and what Apache serves over HTTP and HTTPS are as before
// the call or as after it.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, promises as fsp, readFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { freeLoopbackPort } from '../../../agent/os/process.ts';
import { requireProgram } from '../../helpers/programs.ts';
import { startPebble, type Pebble } from '../../helpers/pebble.ts';
import { fetchSite } from '../../helpers/websites.ts';
import { crashCase, crashSuite, listTree, type CrashHost } from '../../helpers/crash.ts';

const D = 'kill.crashtls.test';
let pebble: Pebble | null = null;
let apache2 = '';
let httpPort = 0;
let httpsPort = 0;
let root = '';
let cert = '';
let key = '';
/** The serial on disk when the case's setup ended (renewal: did it change?). */
let setupSerial = '';

const certDir = (h: CrashHost): string => h.state(`websites/certs/${D}`);

function servedSerial(ca: string): Promise<string> {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: httpsPort,
        servername: D,
        headers: { Host: D },
        ca,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        resolve((res.socket as TLSSocket).getPeerCertificate().serialNumber);
        res.resume();
      },
    );
    req.on('error', () => resolve('none'));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function diskSerial(h: CrashHost): Promise<string> {
  const names = (await fsp.readdir(certDir(h)).catch(() => [] as string[])).filter((n) => /^cert-/.test(n));
  if (names.length !== 1) return names.length === 0 ? 'none' : `${names.length} certificates`;
  const t = await fsp.readFile(path.join(certDir(h), names[0] ?? ''), 'utf8').catch(() => null);
  return t === null ? 'none' : new X509Certificate(t).serialNumber.toUpperCase();
}

async function site(h: CrashHost) {
  const r = await h.ok('list websites', {});
  return r.websites.find((s) => s.domain === D);
}

type State = 'http' | 'acme';
const ensure =
  (state: State) =>
  async (h: CrashHost): Promise<void> => {
    const s = await site(h);
    if (!s) await h.ok('create website', { domain: D });
    const mode = s?.https?.mode ?? null;
    if (state === 'http' && mode !== null) await h.ok('set website https', { domain: D, https: 'off' });
    if (state === 'acme' && (mode !== 'acme' || s?.https?.redirect !== true))
      await h.ok('set website https', { domain: D, https: 'acme', redirect: true });
    setupSerial = await diskSerial(h);
  };

export default crashSuite({
  name: 'websites-https',
  requires() {
    apache2 = requireProgram('apache2', 'apache2');
    requireProgram('openssl', 'openssl');
    requireProgram('pebble', 'pebble');
  },
  async before() {
    [httpPort, httpsPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
    pebble = await startPebble(httpPort);
    root = await pebble.root();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-crashtls-own-'));
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
        ...['-subj', `/CN=${D}`, '-addext', `subjectAltName=DNS:${D}`],
        ...['-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')],
      ],
      { stdio: 'pipe' },
    );
    cert = readFileSync(path.join(dir, 'c.pem'), 'utf8');
    key = readFileSync(path.join(dir, 'k.pem'), 'utf8');
    await fsp.rm(dir, { recursive: true, force: true });
  },
  async after() {
    await pebble?.stop();
  },
  modules: () => ({
    websites: {
      acme: { directoryUrl: pebble?.directoryUrl ?? '', caBundle: pebble?.tlsCaFile ?? '' },
      sandboxPorts: { http: httpPort, https: httpsPort },
    },
  }),
  async snapshot(h) {
    let configTest = 'ok';
    try {
      execFileSync(apache2, ['-t', '-f', h.sb('etc/apache2/apache2.conf')], { stdio: 'pipe' });
    } catch (e) {
      configTest = String((e as { stderr?: Buffer }).stderr ?? e);
    }
    const disk = await diskSerial(h);
    const served = await servedSerial(`${root}\n${cert}`);
    return {
      // The vhost names the certificate's id, new for each certificate: normalised.
      vhost: (
        await fsp.readFile(h.sb(`etc/apache2/sites-available/${D}.conf`), 'utf8').catch(() => 'none')
      ).replace(/[0-9a-f]{16}/g, 'ID'),
      enabled: await listTree(h.sb('etc/apache2/sites-enabled')),
      // ACME certificates differ between runs: their presence and mode count, plus whether it
      // is still the one the setup left.
      certs: (await listTree(certDir(h))).map((l) =>
        l.replace(/ [0-9a-f]{16}$/, '').replace(/-[0-9a-f]{16}\.pem/, '-ID.pem'),
      ),
      sameCertAsSetup: disk === setupSerial,
      servesDiskCert: served === disk,
      http: (await fetchSite(httpPort, D)).status,
      configTest,
    };
  },
  cases: [
    crashCase({
      event: 'set website https',
      label: 'own certificate',
      params: () => ({ domain: D, https: 'own', certificate: cert, key, hsts: true }),
      otherParams: () => ({ domain: D, https: 'own', certificate: cert, key, hsts: false }),
      setup: ensure('http'),
      minSteps: 3,
    }),
    crashCase({
      event: 'set website https',
      label: 'ACME',
      params: () => ({ domain: D, https: 'acme', redirect: true }),
      otherParams: () => ({ domain: D, https: 'acme', redirect: false }),
      setup: ensure('http'),
      minSteps: 3,
    }),
    crashCase({
      event: 'renew website certificate',
      params: () => ({ domain: D }),
      otherParams: () => ({ domain: `other.${D}` }),
      setup: ensure('acme'),
      minSteps: 3,
    }),
    crashCase({
      event: 'set website https',
      label: 'off',
      params: () => ({ domain: D, https: 'off' }),
      otherParams: () => ({ domain: D, https: 'acme' }),
      setup: ensure('acme'),
      minSteps: 3,
    }),
  ],
});
