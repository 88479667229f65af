import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { io as ioc } from 'socket.io-client';
import { Server as IoServer } from 'socket.io';
import { createCa, issueCertificate } from '../../shared/pki/index.ts';
import { PanelPki, servesAgents } from '../../server/hosts/pki-store.ts';
import { openDatabase } from '../../server/db/database.ts';
import { x509, generateKeyPair, importKeyPair, SIGN_ALG } from '../../shared/pki/crypto.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import type { RunningAgent } from '../../agent/main.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { listenerUrl, recordReverseHost, startReverseAgent } from '../helpers/reverse.ts';
import { lightSandbox, runAgentCli } from '../helpers/enroll.ts';
import { startAgent } from '../../agent/main.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { quietLogger } from '../helpers/panel-link.ts';
import { pino } from 'pino';
import { Writable } from 'node:stream';

let t: TestPanel;
const agents: RunningAgent[] = [];

/** One Socket.IO connection to the agent listener with this client certificate: 'connected' or the refusal. */
function tryListener(port: number, tls: { cert?: string; key?: string; ca: string }): Promise<string> {
  return new Promise((resolve) => {
    const s = ioc(`https://127.0.0.1:${port}`, {
      transports: ['websocket'],
      reconnection: false,
      timeout: 5000,
      ...tls,
      checkServerIdentity: () => undefined,
    } as Parameters<typeof ioc>[1]);
    s.once('connect', () => {
      s.close();
      resolve('connected');
    });
    s.once('connect_error', (e) => {
      s.close();
      resolve(`refused: ${e.message}`);
    });
  });
}

/**
 * A bare TLS handshake with the agent listener under TLS 1.2, where the client's handshake ends
 * only after the server accepted its certificate: 'secure', or how it failed.
 */
function handshake(port: number, c: { certPem: string; keyPem: string }, ca: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      cert: c.certPem,
      key: c.keyPem,
      ca,
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => {
      s.destroy();
      resolve('secure');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(`failed: ${e.code ?? ''} ${e.message}`));
  });
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  t = await startTestPanel();
});
after(async () => {
  for (const a of agents) await a.stop();
  await t.close();
});

describe('reverse mode: the agent dials the panel', () => {
  test('the panel certificate serves the listener: urn:ponio:panel with serverAuth and clientAuth', () => {
    assert.equal(servesAgents(t.panel.ctx.pki.clientTls().certPem), true);
  });

  test('the agent dials out, opens no port, and calls go through the REST API', async () => {
    const cert = await recordReverseHost(t, 'r1');
    assert.equal(t.panel.ctx.hosts.manager.status('r1')?.state, 'offline');
    const { agent } = await startReverseAgent(t, cert, [listenerUrl(t)]);
    agents.push(agent);
    assert.equal(agent.server, null, 'no listener in reverse mode');
    assert.equal(agent.port, 0);
    await t.panel.ctx.hosts.manager.waitForState('r1', 'online', 10_000);
    const ping = await t.request<{ data: { pong: boolean } }>('POST', '/api/v1/hosts/r1/ping');
    assert.equal(ping.status, 200, ping.text);
    assert.equal(ping.body.data.pong, true);
    const host = await t.request<{ data: { mode: string; connection: { state: string } } }>(
      'GET',
      '/api/v1/hosts/r1',
    );
    assert.equal(host.body.data.mode, 'reverse');
    assert.equal(host.body.data.connection.state, 'online');
  });

  test('a second agent with an unknown URL first: the next URL is tried in turn', async () => {
    const cert = await recordReverseHost(t, 'r-ha');
    // Port 1 on loopback refuses at once; the listener comes second.
    const { agent } = await startReverseAgent(t, cert, ['wss://127.0.0.1:1', listenerUrl(t)]);
    agents.push(agent);
    await t.panel.ctx.hosts.manager.waitForState('r-ha', 'online', 10_000);
    agent.dialOut?.stop();
    await t.panel.ctx.hosts.manager.waitForState('r-ha', 'offline', 2_000); // a clean close: at once
  });

  test('identity only from the certificate: forward, unknown, revoked, foreign and panel certificates are refused', async () => {
    const port = t.panel.agentListener?.port ?? 0;
    const ca = t.panel.ctx.pki.ca;
    const tryAs = async (c: { certPem: string; keyPem: string }): Promise<string> =>
      tryListener(port, { cert: c.certPem, key: c.keyPem, ca: ca.certPem });

    // A forward-mode host (the panel dials it) may not dial in.
    t.panel.ctx.hosts.repo.insert({ id: 'f1', name: 'f1', address: '127.0.0.1', port: 1 });
    const f1 = await issueCertificate({ ca, role: { kind: 'host', hostId: 'f1' } });
    t.panel.ctx.hosts.repo.markEnrolled('f1', f1.serial, f1.notAfter.getTime());
    const row = t.panel.ctx.hosts.repo.get('f1');
    if (row) t.panel.ctx.hosts.connect(row);
    assert.match(await tryAs(f1), /^refused/);

    // A host the panel does not know, from the right CA.
    assert.match(
      await tryAs(await issueCertificate({ ca, role: { kind: 'host', hostId: 'ghost' } })),
      /^refused/,
    );
    // The panel's own certificate is not a host.
    assert.match(await tryAs(t.panel.ctx.pki.panelCertificate()), /^refused/);
    // Another CA: TLS itself refuses.
    const other = await createCa();
    assert.match(
      await tryAs(await issueCertificate({ ca: other, role: { kind: 'host', hostId: 'r1' } })),
      /^refused/,
    );
    // No client certificate at all.
    assert.match(await tryListener(port, { ca: ca.certPem }), /^refused/);

    // A reverse host's certificate, revoked: refused, though it chains and names a known host.
    const r3 = await recordReverseHost(t, 'r3');
    assert.equal(await tryAs(r3), 'connected');
    t.panel.ctx.pki.revoke(r3.serial, 'test');
    assert.match(await tryAs(r3), /^refused/);
    assert.equal(t.panel.ctx.hosts.manager.status('f1')?.state === 'online', false);
  });

  test('one live link per host: a newer link replaces the older', async () => {
    const cert = await recordReverseHost(t, 'r4');
    const { agent } = await startReverseAgent(t, cert, [listenerUrl(t)]);
    agents.push(agent);
    const m = t.panel.ctx.hosts.manager;
    await m.waitForState('r4', 'online', 10_000);
    assert.equal(agent.links.count(), 1);
    // Another connection with the same identity: the agent's link is the one dropped.
    const port = t.panel.agentListener?.port ?? 0;
    assert.equal(
      await tryListener(port, { cert: cert.certPem, key: cert.keyPem, ca: t.panel.ctx.pki.ca.certPem }),
      'connected',
    );
    await until('the agent to dial again after its link was replaced', () => agent.links.count() === 1);
    await m.waitForState('r4', 'online', 10_000);
    assert.ok((await m.call('r4', 'ping', {})).ok);
  });

  test('removing a reverse host cuts its live link at once; it cannot come back', async () => {
    const cert = await recordReverseHost(t, 'r5');
    const { agent } = await startReverseAgent(t, cert, [listenerUrl(t)]);
    agents.push(agent);
    await t.panel.ctx.hosts.manager.waitForState('r5', 'online', 10_000);
    const del = await t.request('DELETE', '/api/v1/hosts/r5');
    assert.equal(del.status, 200, del.text);
    await until('the agent to see its link cut', () => agent.links.count() === 0, 2_000);
    // It keeps dialing and is refused at the handshake (revoked, removed).
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(agent.links.count(), 0);
    assert.equal(t.panel.ctx.hosts.manager.status('r5'), null);
  });

  test('a removed or revoked host is refused in the TLS handshake itself (the listener holds a CRL)', async () => {
    // A panel of its own, to read the listener's log.
    const lines: Array<{ msg?: string; reason?: string; hostId?: string }> = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as (typeof lines)[0]);
          done();
        },
      }),
    );
    const p = await startTestPanel({}, { logger });
    try {
      const port = p.panel.agentListener?.port ?? 0;
      const ca = p.panel.ctx.pki.ca.certPem;
      const removed = await recordReverseHost(p, 'r6');
      const revoked = await recordReverseHost(p, 'r7');
      // Before: both handshakes complete.
      assert.equal(await handshake(port, removed, ca), 'secure');
      assert.equal(await handshake(port, revoked, ca), 'secure');
      // Removed through the API: the CRL is re-signed at once.
      const del = await p.request('DELETE', '/api/v1/hosts/r6');
      assert.equal(del.status, 200, del.text);
      // Revoked in the database only (as another process would do it): picked up within a second.
      p.panel.ctx.pki.revoke(revoked.serial, 'test');
      const tlsRefusals = (): number =>
        lines.filter((l) => l.msg === 'agent TLS handshake refused' && l.reason === 'CERT_REVOKED').length;
      const identityRefusals = (): number => lines.filter((l) => l.msg === 'refused an agent').length;
      await until(
        'the CRL to list both',
        () =>
          lines.some(
            (l) => l.msg?.includes('revocation list signed') && JSON.stringify(l).includes('"revoked":2'),
          ),
        5_000,
      );
      const before = identityRefusals();
      // The handshake never completes, and OpenSSL's own verification says why: CERT_REVOKED,
      // before the connection reaches the listener's identity check.
      assert.match(await handshake(port, removed, ca), /^failed: ECONNRESET/);
      assert.match(await handshake(port, revoked, ca), /^failed: ECONNRESET/);
      await until('two TLS-layer refusals in the log', () => tlsRefusals() === 2, 2_000);
      assert.equal(identityRefusals(), before, 'the identity check after the handshake was not reached');
      // A host in good standing still completes it (the refusal is the revocation, not the listener).
      const fine = await recordReverseHost(p, 'r8');
      assert.equal(await handshake(port, fine, ca), 'secure');
    } finally {
      await p.close();
    }
  });

  test('the agent accepts only the panel: a listener with a host certificate gets no link', async () => {
    const ca = t.panel.ctx.pki.ca;
    const impostor = await issueCertificate({ ca, role: { kind: 'host', hostId: 'evil' } });
    const server = https.createServer({ cert: impostor.certPem, key: impostor.keyPem, ca: ca.certPem });
    const io = new IoServer(server, { transports: ['websocket'] });
    let connections = 0;
    io.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const cert = await recordReverseHost(t, 'r6');
      const { agent } = await startReverseAgent(t, cert, [
        `wss://127.0.0.1:${(server.address() as AddressInfo).port}`,
      ]);
      agents.push(agent);
      await assert.rejects(agent.dialOut?.whenConnected(2_000) ?? Promise.resolve(), /not connected/);
      assert.equal(connections, 0, 'the impostor never got a Socket.IO connection');
      agent.dialOut?.stop();
    } finally {
      await io.close();
    }
  });

  test('over a reverse link: certificate renewal, then panel certificate rotation', async () => {
    const cert = await recordReverseHost(t, 'r7');
    const { agent, dir } = await startReverseAgent(t, cert, [listenerUrl(t)]);
    agents.push(agent);
    const m = t.panel.ctx.hosts.manager;
    await m.waitForState('r7', 'online', 10_000);
    const renewed = await t.request<{ data: { serial: string } }>(
      'POST',
      '/api/v1/hosts/r7/certificate/renew',
    );
    assert.equal(renewed.status, 200, renewed.text);
    assert.notEqual(renewed.body.data.serial, cert.serial);
    const onDisk = new X509Certificate(readFileSync(path.join(dir, 'etc/ponio-agent/agent.crt'), 'utf8'));
    assert.equal(
      onDisk.serialNumber.replace(/^0+/, ''),
      renewed.body.data.serial,
      'the agent stored the new one',
    );
    assert.ok((await m.call('r7', 'ping', {})).ok, 'the link stayed up');

    // Rotation cuts every reverse link; the agent dials again, now with its renewed certificate
    // (the old one is revoked), and meets the listener's new panel certificate.
    const rotated = await t.request<{ data: { newSerial: string } }>(
      'POST',
      '/api/v1/panel/certificate/rotate',
    );
    assert.equal(rotated.status, 200, rotated.text);
    await until('the link to be re-made', () => m.status('r7')?.state !== 'online', 5_000).catch(
      () => undefined,
    );
    await m.waitForState('r7', 'online', 15_000);
    assert.ok((await m.call('r7', 'ping', {})).ok);
    const served = await new Promise<string>((resolve, reject) => {
      const key = readFileSync(path.join(dir, 'etc/ponio-agent/agent.key'), 'utf8');
      const c = tlsConnect({
        host: '127.0.0.1',
        port: t.panel.agentListener?.port ?? 0,
        cert: onDisk.toString(),
        key,
        ca: t.panel.ctx.pki.ca.certPem,
        checkServerIdentity: () => undefined,
      });
      c.once('secureConnect', () => {
        resolve(c.getPeerX509Certificate()?.serialNumber.replace(/^0+/, '') ?? '');
        c.destroy();
      });
      c.once('error', reject);
    });
    assert.equal(served, rotated.body.data.newSerial, 'the listener serves the new panel certificate');
  });

  test('REST: POST /api/v1/hosts with "mode": "reverse" takes no address', async () => {
    const r = await t.request<{ data: { host: { mode: string; address: string }; command: string } }>(
      'POST',
      '/api/v1/hosts',
      { body: { name: 'nat1', mode: 'reverse' } },
    );
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.data.host.mode, 'reverse');
    assert.match(r.body.data.command, /^ponio-agent enroll --panel /);
    const bad = await t.request<{ error: { code: string; message: string } }>('POST', '/api/v1/hosts', {
      body: { name: 'nat2', mode: 'reverse', address: '10.0.0.1' },
    });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.body.error.message, /reverse-mode host has no address/);
    const badMode = await t.request<{ error: { code: string } }>('POST', '/api/v1/hosts', {
      body: { name: 'nat3', mode: 'sideways\n' },
    });
    assert.equal(badMode.status, 400, badMode.text);
    assert.equal(badMode.body.error.code, 'invalid-argument');
    assert.equal(t.panel.ctx.hosts.repo.getByName('nat2'), null);
    assert.equal(t.panel.ctx.hosts.repo.getByName('nat3'), null);
  });
});

describe('enrollment in reverse mode', () => {
  test('dashboard wizard ("the panel cannot reach this host") → ponio-agent enroll → the agent dials out, waiting → online', async () => {
    const admin = await t.signedIn('wizard-admin', 'admin');
    const page = await admin.submit('/hosts/new', '/hosts/new', {
      name: 'natweb',
      address: '',
      reverse: '1',
    });
    assert.equal(page.status, 200, page.text.slice(0, 500));
    const cmd = /id="enroll-command">([^<]+)</.exec(page.text)?.[1] ?? '';
    assert.match(cmd, /^ponio-agent enroll --panel https:\/\/\S+ --token \S+ --ca-pin sha256:[0-9a-f]{64}$/);
    assert.match(page.text, /data-host-state="natweb">waiting for the agent/);
    assert.equal(t.panel.ctx.hosts.repo.getByName('natweb')?.mode, 'reverse');
    // The command the panel showed, run for real (sandbox mode, no --listen).
    const box = lightSandbox('rev');
    const r = await runAgentCli([...cmd.split(' ').slice(1), '--sandbox', box.dir]);
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(readFileSync(box.configFile, 'utf8')) as { connect?: string[]; listen?: string };
    assert.deepEqual(cfg.connect, [listenerUrl(t)], 'enrollment wrote where to dial');
    assert.equal(cfg.listen, undefined, 'and no listening address');
    const agent = await startAgent(loadAgentConfig({ config: box.configFile }, {}), quietLogger);
    agents.push(agent);
    assert.equal(agent.server, null);
    await t.panel.ctx.hosts.manager.waitForState('natweb', 'online', 15_000);
    const hostPage = await admin.get('/hosts/natweb');
    assert.match(hostPage.text, /data-host-state="natweb">online/);
  });

  test('a reverse host cannot enroll while the agent listener is off', async () => {
    const off = await startTestPanel({ agentListen: 'off' });
    try {
      assert.equal(off.panel.agentListener, null);
      const r = await off.request<{ data: { command: string } }>('POST', '/api/v1/hosts', {
        body: { name: 'nat9', mode: 'reverse' },
      });
      assert.equal(r.status, 201, r.text);
      const box = lightSandbox('rev-off');
      const e = await runAgentCli([...r.body.data.command.split(' ').slice(1), '--sandbox', box.dir]);
      assert.notEqual(e.code, 0);
      assert.match(e.stderr, /agent listener is off/);
    } finally {
      await off.close();
    }
  });
});

describe('upgrade of an existing data dir', () => {
  test('a panel certificate from before reverse mode (clientAuth only) is replaced at start', async () => {
    const dir = tempDir('ponio-upgrade-');
    const pki = path.join(dir, 'pki');
    mkdirSync(pki, { recursive: true });
    const ca = await createCa();
    const caKeys = await importKeyPair(ca.keyPem);
    const { keys, privateKeyPem } = await generateKeyPair();
    const old = await x509.X509CertificateGenerator.create({
      serialNumber: '1A2B3C',
      subject: 'CN=PonIO panel',
      issuer: new x509.X509Certificate(ca.certPem).subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 90 * 86_400_000),
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: SIGN_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'urn:ponio:panel' }]),
      ],
    });
    writeFileSync(path.join(pki, 'ca.crt'), ca.certPem);
    writeFileSync(path.join(pki, 'ca.key'), ca.keyPem);
    writeFileSync(path.join(pki, 'panel.crt'), old.toString('pem'));
    writeFileSync(path.join(pki, 'panel.key'), privateKeyPem);
    assert.equal(servesAgents(old.toString('pem')), false);
    const db = openDatabase(path.join(dir, 'panel.db'));
    try {
      const loaded = await PanelPki.load(dir, db, { dns: ['localhost'], ips: [] });
      const now = loaded.panelCertificate().certPem;
      assert.equal(servesAgents(now), true, 'the new panel certificate can serve the agent listener');
      assert.equal(loaded.caFingerprint().length > 0, true);
      assert.equal(loaded.ca.certPem, ca.certPem, 'the CA is kept (agents stay enrolled)');
    } finally {
      db.close();
    }
  });
});
