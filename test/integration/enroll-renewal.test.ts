import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import type { AgentProcess } from '../helpers/agent-process.ts';
import { enrollWith, freePort, lightSandbox, serveAgent } from '../helpers/enroll.ts';

// Host certificates live 20 s here (90 days in production), so renewal (at two thirds) is due
// about 13 s after issuance; the panel looks twice a second.
const LIFETIME_S = 20;

let t: TestPanel;
let agent: AgentProcess | null = null;
let dir = '';

before(async () => {
  t = await startTestPanel({ hostCertLifetimeSeconds: LIFETIME_S, renewalCheckSeconds: 0.5 });
});
after(async () => {
  await agent?.stop();
  await t.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const normal = (serial: string): string => serial.toUpperCase().replace(/^0+/, '');

/** The certificate the agent presents to a new TLS connection (made with the panel's client certificate). */
function servedSerial(port: number): Promise<string> {
  const m = t.panel.ctx.pki.clientTls();
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      {
        host: '127.0.0.1',
        port,
        cert: m.certPem,
        key: m.keyPem,
        ca: m.caPem,
        checkServerIdentity: () => undefined,
      },
      () => {
        const serial = s.getPeerCertificate().serialNumber;
        s.end();
        resolve(normal(serial));
      },
    );
    s.once('error', reject);
  });
}

test('renewal at two thirds of life replaces the certificate while calls keep succeeding', async () => {
  const port = await freePort();
  const added = await t.request<{ data: { command: string } }>('POST', '/api/v1/hosts', {
    body: { name: 'renew1', address: `127.0.0.1:${port}` },
  });
  assert.equal(added.status, 201, added.text);
  const sbx = lightSandbox('renew');
  dir = sbx.dir;
  const r = await enrollWith(added.body.data.command, sbx.dir, port);
  assert.equal(r.code, 0, r.stderr);
  const firstSerial = t.panel.ctx.hosts.repo.get('renew1')?.cert_serial;
  assert.ok(firstSerial);
  const firstKey = readFileSync(path.join(sbx.configDir, 'agent.key'), 'utf8');
  const issued = new X509Certificate(readFileSync(path.join(sbx.configDir, 'agent.crt')));
  assert.ok(
    new Date(issued.validTo).getTime() - Date.now() <= LIFETIME_S * 1000,
    'the configured short lifetime is used',
  );

  agent = await serveAgent(sbx.configFile);
  await t.panel.ctx.hosts.manager.waitForState('renew1', 'online', 20_000);
  assert.equal(await servedSerial(port), firstSerial);

  // Keep calling through the renewal; every call must succeed.
  const failures: string[] = [];
  let calls = 0;
  const deadline = Date.now() + (LIFETIME_S + 10) * 1000;
  let renewedAt = 0;
  while (Date.now() < deadline) {
    const ping = await t.request('POST', '/api/v1/hosts/renew1/ping');
    calls++;
    if (ping.status !== 200) failures.push(ping.text);
    const now = t.panel.ctx.hosts.repo.get('renew1')?.cert_serial;
    if (now !== firstSerial && renewedAt === 0) renewedAt = Date.now();
    if (renewedAt && Date.now() - renewedAt > 1500) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  assert.ok(renewedAt > 0, 'the certificate was renewed in time');
  assert.deepEqual(failures, [], `${failures.length} of ${calls} calls failed`);

  const newSerial = t.panel.ctx.hosts.repo.get('renew1')?.cert_serial ?? '';
  assert.notEqual(newSerial, firstSerial);
  // Installed on the agent: new key, new certificate on disk, served to new connections.
  const onDisk = new X509Certificate(readFileSync(path.join(sbx.configDir, 'agent.crt')));
  const diskSerial = normal(onDisk.serialNumber);
  const served = await servedSerial(port);
  const current = t.panel.ctx.hosts.repo.get('renew1')?.cert_serial ?? '';
  assert.equal(diskSerial, current);
  assert.equal(served, current);
  assert.notEqual(readFileSync(path.join(sbx.configDir, 'agent.key'), 'utf8'), firstKey, 'a new key');
  assert.ok(onDisk.checkIssued(new X509Certificate(t.panel.ctx.pki.ca.certPem)));
  assert.match(onDisk.subjectAltName ?? '', /URI:urn:ponio:host:renew1/);
  // The old serial is revoked as superseded; the renewal is audited.
  const old = t.panel.ctx.db
    .prepare('SELECT revoked_at, reason FROM certificates WHERE serial = ?')
    .get(firstSerial) as { revoked_at: number | null; reason: string | null };
  assert.ok(old.revoked_at);
  assert.equal(old.reason, 'superseded by renewal');
  const audit = t.panel.ctx.db
    .prepare(
      "SELECT ok, params FROM audit_log WHERE action = 'host certificate renew' AND host_id = 'renew1'",
    )
    .all() as { ok: number; params: string }[];
  assert.ok(audit.length >= 1);
  assert.ok(
    audit.every((a) => a.ok === 1),
    JSON.stringify(audit),
  );
  assert.equal((JSON.parse(audit[0]?.params ?? '{}') as { oldSerial?: string }).oldSerial, firstSerial);
  // No downtime: the panel's connection was never dropped.
  const out = agent.output();
  assert.match(out, /installed a renewed certificate/);
  assert.equal(out.split('\n').filter((l) => l.includes('"msg":"panel disconnected"')).length, 0, out);

  // What was written is complete: a restarted agent serves the renewed certificate and key.
  await agent.stop();
  agent = await serveAgent(sbx.configFile);
  await t.panel.ctx.hosts.manager.waitForState('renew1', 'online', 20_000);
  const after = await t.request('POST', '/api/v1/hosts/renew1/ping');
  assert.equal(after.status, 200, after.text);
  // (A further renewal may land meanwhile: the served certificate is the panel's current one.)
  const before2 = t.panel.ctx.hosts.repo.get('renew1')?.cert_serial ?? '';
  const served2 = await servedSerial(port);
  const after2 = t.panel.ctx.hosts.repo.get('renew1')?.cert_serial ?? '';
  assert.ok(served2 === before2 || served2 === after2, `${served2} is not ${before2} / ${after2}`);
  assert.notEqual(served2, firstSerial);
});
