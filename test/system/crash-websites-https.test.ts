// Crash safety of HTTPS per site: a real agent process (its ACME CA a real pebble on loopback) is
// killed at every step of set website https (own certificate, ACME, off) and renew website
// certificate (test/helpers/kill-points.ts); after each restart the vhost, the certificate files,
// `apache2 -t` and what Apache serves over HTTP and HTTPS are as before the call or as after it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import { freeLoopbackPort } from '../../agent/os/process.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { fetchSite } from '../helpers/websites.ts';
import {
  KillHarness,
  killAtEveryStep,
  listTree,
  tempFiles,
  type KillScenario,
} from '../helpers/kill-points.ts';
import { freePort } from '../helpers/enroll.ts';

const HOST = 'crashtls';
const D = 'kill.crashtls.test';
let pki: TestPki;
let sandbox: string;
let m: ConnectionManager;
let h: KillHarness;
let pebble: Pebble;
let apache2: string;
let httpPort = 0;
let httpsPort = 0;
let root = '';
let cert = '';
let key = '';
/** The serial on disk when the scenario's setup ended (renewal: did it change?). */
let setupSerial = '';

const sb = (rel: string): string => path.join(sandbox, rel);
const certDir = (): string => sb(`var/lib/ponio-agent/websites/certs/${D}`);

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

async function diskSerial(): Promise<string> {
  const names = (await fsp.readdir(certDir()).catch(() => [] as string[])).filter((n) => /^cert-/.test(n));
  if (names.length !== 1) return names.length === 0 ? 'none' : `${names.length} certificates`;
  const t = await fsp.readFile(path.join(certDir(), names[0] ?? ''), 'utf8').catch(() => null);
  return t === null ? 'none' : new X509Certificate(t).serialNumber.toUpperCase();
}

async function site() {
  const r = await h.ok('list websites', {});
  return r.websites.find((s) => s.domain === D);
}

type State = 'http' | 'acme';
async function ensure(state: State): Promise<void> {
  const s = await site();
  if (!s) await h.ok('create website', { domain: D });
  const mode = s?.https?.mode ?? null;
  if (state === 'http' && mode !== null) await h.ok('set website https', { domain: D, https: 'off' });
  if (state === 'acme' && (mode !== 'acme' || s?.https?.redirect !== true))
    await h.ok('set website https', { domain: D, https: 'acme', redirect: true });
  setupSerial = await diskSerial();
}

async function snapshot(): Promise<unknown> {
  let configTest = 'ok';
  try {
    execFileSync(apache2, ['-t', '-f', sb('etc/apache2/apache2.conf')], { stdio: 'pipe' });
  } catch (e) {
    configTest = String((e as { stderr?: Buffer }).stderr ?? e);
  }
  const disk = await diskSerial();
  const served = await servedSerial(`${root}\n${cert}`);
  return {
    // The vhost names the certificate's id, new for each certificate: normalised.
    available: (
      await fsp.readFile(sb(`etc/apache2/sites-available/${D}.conf`), 'utf8').catch(() => 'none')
    ).replace(/[0-9a-f]{16}/g, 'ID'),
    enabled: await listTree(sb('etc/apache2/sites-enabled')),
    // ACME certificates differ between runs: their presence and mode count, plus whether it is
    // still the one the setup left.
    certs: (await listTree(certDir())).map((l) =>
      l.replace(/ [0-9a-f]{16}$/, '').replace(/-[0-9a-f]{16}\.pem/, '-ID.pem'),
    ),
    sameCertAsSetup: disk === setupSerial,
    servesDiskCert: served === disk || (served === 'none' && disk === 'none'),
    http: (await fetchSite(httpPort, D)).status,
    temps: await tempFiles([sb('etc/apache2/sites-available'), certDir(), sb('var/lib/ponio-agent/calls')]),
    configTest,
  };
}

before(async () => {
  apache2 = requireProgram('apache2', 'apache2');
  requireRoot('the HTTPS crash test');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-crashtls-'));
  [httpPort, httpsPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  pebble = await startPebble(httpPort);
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(
    config,
    JSON.stringify({
      modules: {
        ftp: false,
        mysql: false,
        firewall: false,
        websites: {
          acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.tlsCaFile },
          sandboxPorts: { http: httpPort, https: httpsPort },
        },
      },
    }),
  );
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
  const agentPort = await freePort();
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agentPort });
  h = new KillHarness(m, HOST, [
    ...['--config', config, '--listen', `127.0.0.1:${agentPort}`, '--sandbox', sandbox],
    ...['--cert', files.certFile, '--key', files.keyFile, '--ca', files.caFile],
  ]);
  await h.start(null);
  root = await pebble.root();
});

after(async () => {
  await h?.stop();
  await m?.close();
  const pid = Number(await fsp.readFile(sb('run/apache2/apache2.pid'), 'utf8').catch(() => ''));
  if (pid > 1) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await pebble?.stop();
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

const cases: Array<[KillScenario['event'], () => object, State, string]> = [
  [
    'set website https',
    () => ({ domain: D, https: 'own', certificate: cert, key, hsts: true }),
    'http',
    'own certificate',
  ],
  ['set website https', () => ({ domain: D, https: 'acme', redirect: true }), 'http', 'ACME'],
  ['renew website certificate', () => ({ domain: D }), 'acme', 'renewal'],
  ['set website https', () => ({ domain: D, https: 'off' }), 'acme', 'off'],
];
for (const [event, params, from, what] of cases) {
  test(`a kill at any step of "${event}" (${what}) leaves it fully applied or fully absent`, async (t) => {
    const r = await killAtEveryStep(h, {
      event,
      params: () => params(),
      setup: () => ensure(from),
      snapshot,
    });
    t.diagnostic(`${r.steps} kill points: ${r.outcomes.join(' ')}`);
    assert.ok(r.steps >= 3, `${event}: ${r.steps} kill points`);
  });
}
