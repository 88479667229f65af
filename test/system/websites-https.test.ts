// HTTPS per site against the real parts: a sandbox agent (in-process) whose private Apache has an
// HTTPS port, a real ACME server (pebble on loopback, its DNS pointing every name at 127.0.0.1)
// validating HTTP-01 through that Apache, and TLS connections that verify the served chain
// against pebble's root (fetched from its management interface).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { fetchSite, hashTree, portOf } from '../helpers/websites.ts';
import { freeLoopbackPort } from '../../agent/os/process.ts';

const HOST = 'tls1';
let pki: TestPki;
let agent: RunningAgent;
let m: ConnectionManager;
let sandbox: string;
let pebble: Pebble;
let port: number;
let httpsPort: number;
let root: string;

const sb = (rel: string): string => path.join(sandbox, rel);
const call = <E extends EventName>(event: E, params: RequestIn<E>) => m.call(HOST, event, params);

/** Digest of what the websites module writes (config, site trees, certificates). */
async function digest(): Promise<string> {
  const log = (rel: string): boolean => /\/logs\/[^/]+\.log$/.test(rel);
  const parts = await Promise.all(
    [sb('etc/apache2'), sb('var/www'), sb('var/lib/ponio-agent/websites/certs')].map((d) =>
      hashTree(d, () => false, log),
    ),
  );
  return parts.join(':');
}

interface Served {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  serial: string;
}

/** GET over TLS with SNI `host`, verifying the chain against `ca` and the name. */
function fetchTls(host: string, ca: string, urlPath = '/'): Promise<Served> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: httpsPort,
        path: urlPath,
        servername: host,
        headers: { Host: host },
        ca,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, serial }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

before(async () => {
  requireRoot('the HTTPS system test');
  requireProgram('apache2', 'apache2');
  requireProgram('openssl', 'openssl');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-tls-'));
  // pebble validates on the sandbox Apache's HTTP port: pick the ports first.
  const [httpPort, tlsPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  pebble = await startPebble(httpPort);
  const base = { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox };
  const websites = {
    acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.tlsCaFile },
    sandboxPorts: { http: httpPort, https: tlsPort },
  };
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(config, JSON.stringify({ modules: { websites } }));
  agent = await startAgent(loadAgentConfig({ ...base, config }, {}), quietLogger);
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  await m.waitForState(HOST, 'online');
  const list = await call('list websites', {});
  assert.ok(list.ok, JSON.stringify(list));
  port = portOf(list.data.url);
  assert.equal(port, httpPort);
  httpsPort = tlsPort;
  root = await pebble.root();
});

after(async () => {
  await m?.close();
  await agent?.stop();
  await pebble?.stop();
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
});

describe('HTTPS per site with a real ACME CA (pebble)', () => {
  const A = 'secure.tls.test';
  let firstSerial = '';

  test('a certificate from the ACME CA: served over HTTPS, chain verified against pebble’s root', async () => {
    assert.ok((await call('create website', { domain: A, aliases: [`www.${A}`] })).ok);
    const r = await call('set website https', { domain: A, https: 'acme', redirect: true, hsts: true });
    assert.ok(r.ok, JSON.stringify(r));
    const h = r.data.https;
    assert.equal(h?.mode, 'acme');
    assert.deepEqual(h?.certificate?.names.sort(), [A, `www.${A}`].sort());
    assert.ok((h?.certificate?.notAfter ?? 0) > Date.now());
    assert.ok(
      (h?.certificate?.renewAt ?? 0) > Date.now() &&
        (h?.certificate?.renewAt ?? 0) < (h?.certificate?.notAfter ?? 0),
    );
    assert.equal(h?.lastError, null);
    for (const name of [A, `www.${A}`]) {
      const res = await fetchTls(name, root);
      assert.equal(res.status, 200);
      assert.match(res.body, /ponio-placeholder/);
      assert.equal(res.headers['strict-transport-security'], 'max-age=31536000');
      firstSerial = res.serial;
    }
    // A client that does not trust pebble's root refuses the connection.
    await assert.rejects(fetchTls(A, readFileSync(pki.files.caCert, 'utf8')));
    // HTTP redirects to HTTPS (path kept); the challenge path is never redirected.
    const plain = await fetchSite(port, A, '/some/page?x=1');
    assert.equal(plain.status, 301);
    assert.equal((await fetchSite(port, A, '/.well-known/acme-challenge/nothing')).status, 404);
    const listed = await call('list websites', {});
    assert.ok(listed.ok);
    assert.equal(listed.data.websites.find((w) => w.domain === A)?.https?.certificate?.names.length, 2);
  });

  test('renewal: the new certificate is what Apache serves', async () => {
    const r = await call('renew website certificate', { domain: A });
    assert.ok(r.ok, JSON.stringify(r));
    const res = await fetchTls(A, root);
    assert.equal(res.status, 200);
    assert.notEqual(res.serial, firstSerial, 'a new certificate is served');
  });

  test('a failing challenge: a clear error, the site still served over HTTP, nothing changed', async () => {
    const F = 'fails.tls.test';
    assert.ok((await call('create website', { domain: F })).ok);
    // pebble resolves it to an address nothing listens on: the HTTP-01 validation fails.
    await pebble.setA(F, '127.0.0.2');
    const before = await digest();
    const events: Array<{ topic: string; data: unknown }> = [];
    const onEvent = (_id: string, e: { topic: string; data: unknown }): void => void events.push(e);
    m.on('agentEvent', onEvent);
    const r = await call('set website https', { domain: F, https: 'acme', redirect: true });
    m.off('agentEvent', onEvent);
    const told = events.find((e) => e.topic === 'website certificate failed');
    assert.equal((told?.data as { domain?: string } | undefined)?.domain, F, 'the panel is told');
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.code, 'failed-precondition');
      assert.match(r.error.message, /did not issue a certificate for fails\.tls\.test/);
    }
    assert.equal(await digest(), before);
    assert.equal((await fetchSite(port, F)).status, 200, 'still served over HTTP');
    assert.equal((await fetchTls(A, root)).status, 200, 'the other site keeps its HTTPS');
  });

  test('own certificate: a mismatched key, garbage or a huge upload is refused with nothing changed; a good one is served', async () => {
    const O = 'own.tls.test';
    assert.ok((await call('create website', { domain: O })).ok);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-own-'));
    const k1 = path.join(dir, 'k1.pem');
    const k2 = path.join(dir, 'k2.pem');
    const crt = path.join(dir, 'c.pem');
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', k1]);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', k2]);
    openssl([
      'req',
      '-x509',
      '-key',
      k1,
      '-days',
      '2',
      '-subj',
      `/CN=${O}`,
      '-addext',
      `subjectAltName=DNS:${O}`,
      '-out',
      crt,
    ]);
    const cert = await fsp.readFile(crt, 'utf8');
    const good = await fsp.readFile(k1, 'utf8');
    const other = await fsp.readFile(k2, 'utf8');
    const before = await digest();
    const refused: Array<[Partial<RequestIn<'set website https'>>, RegExp]> = [
      [{ certificate: cert, key: other }, /does not belong to the certificate/],
      [{ certificate: 'hello', key: good }, /not a PEM certificate/],
      [
        { certificate: cert.replace(/\n[A-Za-z0-9+/]{30}/, `\n${'A'.repeat(30)}`), key: good },
        /cannot be read|does not belong/,
      ],
      [{ certificate: cert, key: 'rm -rf /' }, /not an unencrypted PEM private key/],
      [{ certificate: cert.repeat(200), key: good }, /larger than 64 KiB/],
      [{ certificate: cert }, /needs the certificate chain and its private key/],
    ];
    for (const [extra, why] of refused) {
      const r = await call('set website https', {
        domain: O,
        https: 'own',
        ...extra,
      });
      assert.equal(r.ok, false, String(why));
      if (!r.ok) {
        assert.equal(r.error.code, 'invalid-argument');
        assert.match(r.error.message, why);
        assert.doesNotMatch(r.error.message, /PRIVATE KEY-----\n[A-Za-z0-9]/, 'the key is never echoed');
      }
    }
    // A certificate for another name.
    const wrong = await call('set website https', { domain: A, https: 'own', certificate: cert, key: good });
    assert.equal(wrong.ok, false);
    if (!wrong.ok) assert.match(wrong.error.message, new RegExp(`does not cover ${A.replace(/\./g, '\\.')}`));
    assert.equal(await digest(), before);

    const ok = await call('set website https', { domain: O, https: 'own', certificate: cert, key: good });
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.equal(ok.data.https?.mode, 'own');
    assert.equal(ok.data.https?.certificate?.renewAt, null);
    assert.doesNotMatch(JSON.stringify(ok.data), /PRIVATE KEY/);
    assert.equal((await fetchTls(O, cert)).status, 200);
    const keys = (await fsp.readdir(sb(`var/lib/ponio-agent/websites/certs/${O}`))).filter((n) =>
      n.startsWith('key-'),
    );
    assert.equal(keys.length, 1);
    assert.equal(
      (await fsp.stat(sb(`var/lib/ponio-agent/websites/certs/${O}/${keys[0] ?? ''}`))).mode & 0o777,
      0o600,
    );
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('HTTPS off: the HTTPS vhost and the certificate go, HTTP serves without redirect', async () => {
    const r = await call('set website https', { domain: A, https: 'off' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.data.https ?? null, null);
    assert.equal((await fetchSite(port, A)).status, 200);
    assert.deepEqual(
      await fsp.readdir(sb(`var/lib/ponio-agent/websites/certs/${A}`)),
      [],
      'certificate and key removed',
    );
    const res = await fetchTls(A, root).catch((e: unknown) => e);
    assert.ok(res instanceof Error || (res as Served).status === 404, 'no longer served over HTTPS');
  });
});
