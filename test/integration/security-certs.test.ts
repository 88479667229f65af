// Issue 15 item 1 against a real panel, real `ponio-agent` processes and Debian's openssl: an
// operator can no longer get a TLS server certificate for a name of their choosing, and a fake
// panel presenting any host certificate (new form or one issued before this change, even with a
// matching DNS name) never receives a join token from a genuine `ponio-agent enroll --ca-pin`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { lightSandbox, parseEnrollCommand, runAgentCli, serveAgent } from '../helpers/enroll.ts';
import type { AgentProcess } from '../helpers/agent-process.ts';
import { requireProgram } from '../helpers/programs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { createCsr, generateKeyPair, importKeyPair, newSerial } from '../../shared/pki/index.ts';
import { SIGN_ALG, x509 } from '../../shared/pki/crypto.ts';

let t: TestPanel;
let dir: string;
const servers: https.Server[] = [];
const agents: AgentProcess[] = [];

before(async () => {
  requireProgram('openssl', 'openssl');
  t = await startTestPanel();
  dir = tempDir('ponio-certsec-');
  writeFileSync(path.join(dir, 'ca.crt'), t.panel.ctx.pki.ca.certPem);
});
after(async () => {
  for (const a of agents) await a.stop();
  for (const s of servers) s.close();
  await t.close();
});

/** `openssl verify -purpose sslserver -verify_hostname NAME` of a certificate against the panel CA. */
function opensslServerOk(certPem: string, name: string): { ok: boolean; out: string } {
  const file = path.join(dir, `check-${newSerial()}.crt`);
  writeFileSync(file, certPem);
  const r = spawnSync(
    'openssl',
    ['verify', '-CAfile', path.join(dir, 'ca.crt'), '-purpose', 'sslserver', '-verify_hostname', name, file],
    { encoding: 'utf8' },
  );
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** A host certificate as the panel issued them before this change: host URI plus DNS/IP names. */
async function legacyHostCert(hostId: string): Promise<{ certPem: string; keyPem: string; serial: string }> {
  const ca = t.panel.ctx.pki.ca;
  const caKeys = await importKeyPair(ca.keyPem);
  const { keys, privateKeyPem } = await generateKeyPair();
  const serial = newSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=PonIO host ${hostId}`,
    issuer: new x509.X509Certificate(ca.certPem).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 30 * 86_400_000),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: `urn:ponio:host:${hostId}` },
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: privateKeyPem, serial };
}

/**
 * A fake panel on https://localhost:PORT presenting `cert` (for every server name, the panel's
 * own SNI name included): it serves the real CA, as anyone can, and records every request.
 */
async function fakePanel(cert: {
  certPem: string;
  keyPem: string;
}): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${body}`);
      if (req.url === '/enroll/ca') res.end(t.panel.ctx.pki.ca.certPem);
      else res.writeHead(500).end('{}');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `https://localhost:${(server.address() as AddressInfo).port}`, seen };
}

test('an operator who enrolls their own CSR for a host at "localhost" gets no TLS server certificate for it', async () => {
  const add = await t.request('POST', '/api/v1/hosts', {
    body: { name: 'evil', address: 'localhost' },
    token: t.token('operator'),
  });
  assert.equal(add.status, 201, add.text);
  const { token } = parseEnrollCommand(add.body.data.command as string);
  const { csrPem, keyPem } = await createCsr('attacker');
  const r = await t.request('POST', '/enroll', { body: { token, csr: csrPem }, token: null });
  assert.equal(r.status, 201, r.text);
  const certPem = r.body.data.certificate as string;
  assert.equal(new X509Certificate(certPem).subjectAltName, 'URI:urn:ponio:host:evil', 'the host URI only');
  const check = opensslServerOk(certPem, 'localhost');
  assert.equal(check.ok, false, `openssl accepted it as a server certificate for localhost: ${check.out}`);
  // The panel's own certificate is no browser certificate either; the HTTPS one is.
  assert.equal(opensslServerOk(t.panel.ctx.pki.panelCertificate().certPem, 'localhost').ok, false);
  assert.equal(opensslServerOk(t.panel.ctx.pki.serverTls().certPem, 'localhost').ok, true);

  // A fake panel presenting it: a genuine enroll with the real pin refuses and sends no token.
  const fake = await fakePanel({ certPem, keyPem });
  const sbx = lightSandbox('fake1');
  const e = await runAgentCli([
    'enroll',
    '--panel',
    fake.url,
    '--token',
    'A'.repeat(43),
    '--ca-pin',
    t.panel.ctx.pki.caFingerprint(),
    '--sandbox',
    sbx.dir,
  ]);
  assert.notEqual(e.code, 0, e.stdout);
  assert.match(e.stderr, /is not the panel/);
  assert.deepEqual(
    fake.seen.filter((s) => !s.startsWith('GET /enroll/ca')),
    [],
    'nothing but the CA request reached the fake panel',
  );
});

test('a host certificate from before this change (DNS name localhost) does not pass for the panel either', async () => {
  const legacy = await legacyHostCert('old1');
  assert.equal(
    opensslServerOk(legacy.certPem, 'localhost').ok,
    true,
    'it is a server certificate for localhost',
  );
  const fake = await fakePanel(legacy);
  const e = await runAgentCli([
    'enroll',
    '--panel',
    fake.url,
    '--token',
    'B'.repeat(43),
    '--ca-pin',
    t.panel.ctx.pki.caFingerprint(),
    '--sandbox',
    lightSandbox('fake2').dir,
  ]);
  assert.notEqual(e.code, 0, e.stdout);
  assert.match(e.stderr, /is not the panel/);
  assert.deepEqual(
    fake.seen.filter((s) => !s.startsWith('GET /enroll/ca')),
    [],
    'no token was sent',
  );
});

test('the panel certificate can serve (serverAuth + clientAuth), which enrollment and reverse mode rely on', () => {
  const eku = new X509Certificate(t.panel.ctx.pki.panelCertificate().certPem).keyUsage ?? [];
  assert.ok(eku.includes('1.3.6.1.5.5.7.3.1') && eku.includes('1.3.6.1.5.5.7.3.2'), eku.join(','));
  const out = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], {
    input: t.panel.ctx.pki.panelCertificate().certPem,
    encoding: 'utf8',
  });
  assert.match(out, /URI:urn:ponio:panel/);
  assert.doesNotMatch(out, /DNS:|IP Address:/);
});

test('an agent enrolled with an old-form certificate keeps working; its renewal gets the host URI only', async () => {
  const legacy = await legacyHostCert('old2');
  const sbx = lightSandbox('legacy');
  writeFileSync(path.join(sbx.configDir, 'agent.crt'), legacy.certPem);
  writeFileSync(path.join(sbx.configDir, 'agent.key'), legacy.keyPem, { mode: 0o600 });
  writeFileSync(path.join(sbx.configDir, 'ca.crt'), t.panel.ctx.pki.ca.certPem);
  const cfg = JSON.parse(readFileSync(sbx.configFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(sbx.configFile, JSON.stringify({ ...cfg, listen: '127.0.0.1:0', sandbox: sbx.dir }));
  const agent = await serveAgent(sbx.configFile);
  agents.push(agent);
  const repo = t.panel.ctx.hosts.repo;
  repo.insert({ id: 'old2', name: 'old2', address: '127.0.0.1', port: agent.port });
  repo.markEnrolled('old2', legacy.serial, Date.now() + 30 * 86_400_000);
  t.panel.ctx.hosts.connect(repo.get('old2')!);
  await t.panel.ctx.hosts.manager.waitForState('old2', 'online', 30_000);
  const renew = await t.request('POST', '/api/v1/hosts/old2/certificate/renew');
  assert.equal(renew.status, 200, renew.text);
  const renewed = readFileSync(path.join(sbx.configDir, 'agent.crt'), 'utf8');
  assert.notEqual(renewed, legacy.certPem);
  assert.equal(new X509Certificate(renewed).subjectAltName, 'URI:urn:ponio:host:old2');
  const ping = await t.panel.ctx.hosts.manager.call('old2', 'ping', {});
  assert.ok(ping.ok, JSON.stringify(ping));
});
