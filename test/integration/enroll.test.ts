import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate, createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import {
  certFingerprint,
  createCa,
  createCsr,
  publicKeyFromCsr,
  verifyPeerCertificate,
} from '../../shared/pki/index.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import type { AgentProcess } from '../helpers/agent-process.ts';
import { enrollWith, freePort, lightSandbox, parseEnrollCommand, serveAgent } from '../helpers/enroll.ts';
import { tryAgentConnection } from '../helpers/agent-client.ts';

let t: TestPanel;
const agents: AgentProcess[] = [];
const dirs: string[] = [];
let enrollPosts = 0;
let caGets = 0;

interface NewHostReply {
  host: { id: string; name: string; status: string };
  token: string;
  caPin: string;
  command: string;
}

async function addHost(name: string, port: number): Promise<NewHostReply> {
  const r = await t.request<{ data: NewHostReply }>('POST', '/api/v1/hosts', {
    body: { name, address: `127.0.0.1:${port}` },
  });
  assert.equal(r.status, 201, r.text);
  return r.body.data;
}

function sandbox(prefix: string): ReturnType<typeof lightSandbox> {
  const s = lightSandbox(prefix);
  dirs.push(s.dir);
  return s;
}

const certOf = (configDir: string): X509Certificate =>
  new X509Certificate(readFileSync(path.join(configDir, 'agent.crt')));

const tokenRow = (hostId: string) =>
  t.panel.ctx.db
    .prepare('SELECT * FROM join_tokens WHERE host_id = ? ORDER BY id DESC LIMIT 1')
    .get(hostId) as { token_hash: string; used_at: number | null; expires_at: number } | undefined;

const auditActions = (hostId: string): { action: string; ok: number }[] =>
  t.panel.ctx.db.prepare('SELECT action, ok FROM audit_log WHERE host_id = ? ORDER BY id').all(hostId) as {
    action: string;
    ok: number;
  }[];

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const count = (out: string, msg: string): number =>
  out.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length;

before(async () => {
  t = await startTestPanel();
  t.panel.server.on('request', (req: IncomingMessage) => {
    if (req.method === 'POST' && req.url === '/enroll') enrollPosts++;
    if (req.method === 'GET' && req.url === '/enroll/ca') caGets++;
  });
});

after(async () => {
  for (const a of agents) await a.stop();
  await t.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('enrollment', () => {
  let web1: { port: number; agent: AgentProcess; configDir: string; command: string };

  test('happy path: host add → enroll → serve → first ping; token stored only as a hash; audited', async () => {
    const port = await freePort();
    const added = await addHost('web1', port);
    assert.equal(added.host.id, 'web1');
    assert.equal(added.host.status, 'pending');
    const parts = parseEnrollCommand(added.command);
    assert.equal(parts.panel, t.url);
    assert.equal(parts.caPin, certFingerprint(t.panel.ctx.pki.ca.certPem));
    assert.equal(parts.token, added.token);
    // Only the SHA-256 of the token is in the database.
    const row = tokenRow('web1');
    assert.ok(row);
    assert.equal(row.token_hash, createHash('sha256').update(added.token).digest('hex'));
    const dump = JSON.stringify(t.panel.ctx.db.prepare('SELECT * FROM join_tokens').all());
    assert.ok(!dump.includes(added.token), 'the token itself is not stored');
    assert.ok(row.expires_at - Date.now() > 59 * 60_000 && row.expires_at - Date.now() <= 60 * 60_000);

    const sbx = sandbox('web1');
    const r = await enrollWith(added.command, sbx.dir, port);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Enrolled as host web1/);
    assert.match(r.stdout, /Next step: ponio-agent serve --config /);
    const keyFile = path.join(sbx.configDir, 'agent.key');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'key is 0600');
    assert.equal(statSync(sbx.configDir).mode & 0o777, 0o700, 'config dir is 0700');
    assert.equal(
      readFileSync(path.join(sbx.configDir, 'ca.crt'), 'utf8'),
      t.panel.ctx.pki.ca.certPem,
      'CA written',
    );
    const cert = certOf(sbx.configDir);
    assert.ok(
      verifyPeerCertificate(cert, {
        caPem: t.panel.ctx.pki.ca.certPem,
        expect: { kind: 'host', hostId: 'web1' },
      }).ok,
    );
    const cfg = JSON.parse(readFileSync(sbx.configFile, 'utf8')) as Record<string, unknown>;
    assert.equal(cfg.listen, `127.0.0.1:${port}`);
    assert.equal(cfg.sandbox, sbx.dir);
    assert.deepEqual(cfg.modules, { websites: false, ftp: false, mysql: false, firewall: false }, 'kept');
    assert.ok(tokenRow('web1')?.used_at, 'token marked used');

    const agent = await serveAgent(sbx.configFile);
    agents.push(agent);
    await t.panel.ctx.hosts.manager.waitForState('web1', 'online', 20_000);
    const ping = await t.request<{ data: { pong: boolean } }>('POST', '/api/v1/hosts/web1/ping');
    assert.equal(ping.status, 200, ping.text);
    assert.equal(ping.body.data.pong, true);
    const host = await t.request<{ data: { status: string; certificate: { serial: string } } }>(
      'GET',
      '/api/v1/hosts/web1',
    );
    assert.equal(host.body.data.status, 'enrolled');
    assert.equal(host.body.data.certificate.serial, cert.serialNumber.replace(/^0+/, ''));
    const actions = auditActions('web1');
    assert.ok(actions.some((a) => a.action === 'host add' && a.ok === 1));
    assert.ok(actions.some((a) => a.action === 'host enroll' && a.ok === 1));
    web1 = { port, agent, configDir: sbx.configDir, command: added.command };

    // Re-running the same command is safe: nothing changes, the spent token is not even sent.
    const keyBefore = readFileSync(keyFile, 'utf8');
    const posts = enrollPosts;
    const again = await enrollWith(added.command, sbx.dir, port);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Already enrolled as host web1/);
    assert.equal(readFileSync(keyFile, 'utf8'), keyBefore);
    assert.equal(enrollPosts, posts);
  });

  test('a reused token is refused with a clear message and nothing is written', async () => {
    const sbx = sandbox('reuse');
    const posts = enrollPosts;
    const r = await enrollWith(web1.command, sbx.dir, await freePort());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already been used/);
    assert.equal(enrollPosts, posts + 1, 'the request reached the panel');
    assert.ok(!existsSync(path.join(sbx.configDir, 'agent.key')), 'no key written');
    assert.ok(!existsSync(path.join(sbx.configDir, 'agent.crt')), 'no certificate written');
    const refused = auditActions('web1').filter((a) => a.action === 'host enroll' && a.ok === 0);
    assert.equal(refused.length, 1);
  });

  test('an expired token is refused and no certificate is issued', async () => {
    const port = await freePort();
    const added = await addHost('web-expired', port);
    // One hour is too long to wait: move the expiry into the past.
    t.panel.ctx.db
      .prepare('UPDATE join_tokens SET expires_at = ? WHERE host_id = ?')
      .run(Date.now() - 1000, 'web-expired');
    const sbx = sandbox('expired');
    const r = await enrollWith(added.command, sbx.dir, port);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /expired/);
    const certs = t.panel.ctx.db
      .prepare("SELECT COUNT(*) AS n FROM certificates WHERE host_id = 'web-expired'")
      .get() as { n: number };
    assert.equal(certs.n, 0);
    assert.equal(t.panel.ctx.hosts.repo.get('web-expired')?.status, 'pending');
    assert.ok(!existsSync(path.join(sbx.configDir, 'agent.key')));
  });

  test('an unknown token is refused', async () => {
    const port = await freePort();
    const added = await addHost('web-unknown', port);
    const forged = added.command.replace(/--token \S+/, `--token pjt_${'A'.repeat(43)}`);
    const r = await enrollWith(forged, sandbox('unknown').dir, port);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown/);
    assert.equal(tokenRow('web-unknown')?.used_at, null, 'the real token is untouched');
  });

  test('a wrong pin: the agent refuses and sends nothing (no CSR, token untouched)', async () => {
    const port = await freePort();
    const added = await addHost('web-pin', port);
    const wrong = added.command.replace(/sha256:[0-9a-f]{64}/, `sha256:${'ab'.repeat(32)}`);
    const sbx = sandbox('pin');
    const posts = enrollPosts;
    const gets = caGets;
    const r = await enrollWith(wrong, sbx.dir, port);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not match --ca-pin/);
    assert.match(r.stderr, /nothing was sent/);
    assert.equal(caGets, gets + 1, 'the agent fetched the CA');
    assert.equal(enrollPosts, posts, 'no enrollment request (no CSR, no token) reached the panel');
    assert.equal(tokenRow('web-pin')?.used_at, null, 'token still unused');
    assert.ok(!existsSync(path.join(sbx.configDir, 'agent.key')), 'no key written');
    // The same token still works with the right pin.
    const ok = await enrollWith(added.command, sbx.dir, port);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test("a token for host A used on host B yields A's identity only", async () => {
    const portA = await freePort();
    const portB = await freePort();
    const a = await addHost('alpha', portA);
    await addHost('bravo', portB);
    // A CSR that claims to be bravo: the subject is ignored.
    const { csrPem, keyPem: oldKey } = await createCsr('urn:ponio:host:bravo bravo');
    const raw = await t.request<{ data: { hostId: string; certificate: string } }>('POST', '/enroll', {
      token: null,
      body: { token: a.token, csr: csrPem },
    });
    assert.equal(raw.status, 201, raw.text);
    assert.equal(raw.body.data.hostId, 'alpha');
    const cert = new X509Certificate(raw.body.data.certificate);
    const ca = t.panel.ctx.pki.ca.certPem;
    assert.ok(verifyPeerCertificate(cert, { caPem: ca, expect: { kind: 'host', hostId: 'alpha' } }).ok);
    const asB = verifyPeerCertificate(cert, { caPem: ca, expect: { kind: 'host', hostId: 'bravo' } });
    assert.equal(asB.ok, false);
    assert.ok(!(cert.subjectAltName ?? '').includes('bravo'), cert.subjectAltName);
    assert.equal(t.panel.ctx.hosts.repo.get('bravo')?.status, 'pending', 'bravo got nothing');
    assert.equal(t.panel.ctx.hosts.repo.get('bravo')?.cert_serial, null);

    // A second enrollment of alpha (which now holds a live certificate) needs a re-issued token.
    const reissued = await t.request<{ data: { command: string } }>('POST', '/api/v1/hosts/alpha/token');
    assert.equal(reissued.status, 201, reissued.text);
    const sbx = sandbox('alpha');
    const r = await enrollWith(reissued.body.data.command, sbx.dir, portA);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Enrolled as host alpha/);
    const oldSerial = cert.serialNumber.replace(/^0+/, '');
    assert.ok(t.panel.ctx.pki.isRevoked(oldSerial), 'the superseded certificate is revoked');

    // Whoever still holds the superseded key and certificate cannot pass for alpha any more.
    const stale = sandbox('stale');
    writeFileSync(path.join(stale.configDir, 'agent.crt'), raw.body.data.certificate);
    writeFileSync(path.join(stale.configDir, 'agent.key'), oldKey, { mode: 0o600 });
    writeFileSync(path.join(stale.configDir, 'ca.crt'), ca);
    const cfg = JSON.parse(readFileSync(stale.configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(
      stale.configFile,
      JSON.stringify({ ...cfg, listen: `127.0.0.1:${portA}`, sandbox: stale.dir }),
    );
    const impostor = await serveAgent(stale.configFile);
    try {
      const st = await t.panel.ctx.hosts.manager.waitForState('alpha', 'refused', 20_000);
      assert.match(st.lastError ?? '', /revoked/);
      assert.equal(count(impostor.output(), 'panel connected'), 0, 'no session with the stale certificate');
    } finally {
      await impostor.stop();
    }
  });

  test('the agent refuses bad trust requests and leaves its files unchanged', async () => {
    const m = t.panel.ctx.hosts.manager;
    const ca = t.panel.ctx.pki.ca.certPem;
    const files = ['agent.crt', 'agent.key', 'ca.crt'].map((f) => path.join(web1.configDir, f));
    const before = files.map((f) => readFileSync(f, 'utf8'));
    const other = await createCsr('x');
    const foreign = await t.panel.ctx.pki.issueHostCertificate('web1', await publicKeyFromCsr(other.csrPem));
    const noPending = await m.call('web1', 'install certificate', { certPem: foreign.certPem, caPem: ca });
    assert.ok(!noPending.ok && noPending.error.code === 'failed-precondition', JSON.stringify(noPending));
    assert.match(noPending.error.message, /No renewal is pending/);
    const csr = await m.call('web1', 'renew certificate', {});
    assert.ok(csr.ok, JSON.stringify(csr));
    const pendingKey = await publicKeyFromCsr(csr.data.csrPem);
    const wrongKey = await m.call('web1', 'install certificate', { certPem: foreign.certPem, caPem: ca });
    assert.ok(!wrongKey.ok);
    assert.match(wrongKey.error.message, /not for the key this agent generated/);
    const wrongHost = await t.panel.ctx.pki.issueHostCertificate('web2', pendingKey);
    const asOther = await m.call('web1', 'install certificate', { certPem: wrongHost.certPem, caPem: ca });
    assert.ok(!asOther.ok);
    assert.match(asOther.error.message, /identifies urn:ponio:host:web2/);
    const otherCa = await createCa();
    const foreignCa = await m.call('web1', 'install certificate', {
      certPem: foreign.certPem,
      caPem: otherCa.certPem,
    });
    assert.ok(!foreignCa.ok);
    assert.match(foreignCa.error.message, /not the CA this agent trusts/);
    const garbage = await m.call('web1', 'install certificate', { certPem: 'x'.repeat(100), caPem: ca });
    assert.ok(!garbage.ok);
    for (const serials of [['../etc/passwd'], ['AB\nCD'], ["1'; DROP"], ['A'.repeat(65)]]) {
      const r = await m.call('web1', 'set revocations', { serials });
      assert.ok(!r.ok && r.error.code === 'invalid-argument', JSON.stringify(r));
    }
    assert.deepEqual(
      files.map((f) => readFileSync(f, 'utf8')),
      before,
      'nothing changed on the host',
    );
    const ping = await m.call('web1', 'ping', {});
    assert.ok(ping.ok, 'the agent still serves');
  });

  test('panel certificate rotation: agents accept the new one and refuse the revoked old one', async () => {
    const manager = t.panel.ctx.hosts.manager;
    const old = t.panel.ctx.pki.clientTls();
    const out = web1.agent.output();
    const r = await t.request<{ data: { oldSerial: string; newSerial: string } }>(
      'POST',
      '/api/v1/panel/certificate/rotate',
    );
    assert.equal(r.status, 200, r.text);
    assert.notEqual(r.body.data.oldSerial, r.body.data.newSerial);
    await waitFor('the agent to store the revocation', () => {
      try {
        const list = JSON.parse(
          readFileSync(path.join(web1.configDir, '../../var/lib/ponio-agent/revoked.json'), 'utf8'),
        ) as string[];
        return list.includes(r.body.data.oldSerial);
      } catch {
        return false;
      }
    });
    await manager.waitForState('web1', 'online', 20_000);
    const ping = await t.request('POST', '/api/v1/hosts/web1/ping');
    assert.equal(ping.status, 200, ping.text);
    assert.ok(count(web1.agent.output(), 'panel connected') > count(out, 'panel connected'));

    // The old certificate is still within its validity and from the right CA, but revoked.
    const refusalsBefore = count(web1.agent.output(), 'refused a client');
    const refused = await tryAgentConnection(web1.port, {
      cert: old.certPem,
      key: old.keyPem,
      ca: old.caPem,
    });
    assert.match(refused, /^refused/);
    await waitFor(
      'the agent to log the refusal',
      () => count(web1.agent.output(), 'refused a client') > refusalsBefore,
    );
    assert.match(web1.agent.output(), /"reason":"certificate [0-9A-F]+ is revoked"/);
    const audit = t.panel.ctx.db
      .prepare("SELECT ok FROM audit_log WHERE action = 'panel certificate rotate'")
      .all() as { ok: number }[];
    assert.deepEqual(audit, [{ ok: 1 }]);
  });

  test('dashboard: an operator renews a host certificate now, an admin rotates the panel certificate', async () => {
    const op = await t.signedIn('lc-op', 'operator');
    const viewer = await t.signedIn('lc-view', 'viewer');
    const admin = await t.signedIn('lc-admin', 'admin');
    const hostPage = '/hosts/web1';
    assert.match((await op.get(hostPage)).text, /id="renew-certificate"/);
    assert.ok(!(await viewer.get(hostPage)).text.includes('id="renew-certificate"'), 'viewers see no button');
    assert.equal((await viewer.submit(hostPage, `${hostPage}/certificate/renew`, {})).status, 403);
    const before = t.panel.ctx.hosts.repo.get('web1')?.cert_serial;
    const renewed = await op.submit(hostPage, `${hostPage}/certificate/renew`, {});
    assert.equal(renewed.status, 303);
    const after = t.panel.ctx.hosts.repo.get('web1')?.cert_serial;
    assert.ok(after && after !== before, 'a new certificate serial is on record');
    assert.match((await op.get(hostPage)).text, new RegExp(`New certificate ${after} installed`));
    const onDisk = certOf(web1.configDir);
    assert.equal(onDisk.serialNumber.toUpperCase(), after.toUpperCase(), 'installed on the host');
    await t.panel.ctx.hosts.manager.waitForState('web1', 'online', 20_000);
    assert.equal((await t.request('POST', '/api/v1/hosts/web1/ping')).status, 200);

    assert.ok(
      !(await op.get('/settings')).text.includes('rotate-panel-certificate'),
      'operators: no rotation',
    );
    assert.equal((await op.submit('/settings', '/settings/panel-certificate/rotate', {})).status, 403);
    const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber.toUpperCase();
    // Rotate while the agent is down: it learns of the revocation when it is back, and keeps it.
    const old = t.panel.ctx.pki.clientTls();
    const oldSerial = serialOf(old.certPem);
    await web1.agent.stop();
    await t.panel.ctx.hosts.manager.waitForState('web1', 'offline', 20_000);
    const rotated = await admin.submit('/settings', '/settings/panel-certificate/rotate', {});
    assert.equal(rotated.status, 303);
    const newSerial = serialOf(t.panel.ctx.pki.clientTls().certPem);
    assert.notEqual(newSerial, oldSerial);
    assert.match((await admin.get('/settings')).text, /is revoked and every agent was told/);
    const revokedFile = path.join(web1.configDir, '../../var/lib/ponio-agent/revoked.json');
    const revokedList = (): string[] => {
      try {
        return JSON.parse(readFileSync(revokedFile, 'utf8')) as string[];
      } catch {
        return [];
      }
    };
    assert.ok(!revokedList().includes(oldSerial), 'the offline agent has not heard of it yet');
    web1.agent = await serveAgent(path.join(web1.configDir, 'config.json'));
    agents.push(web1.agent);
    await t.panel.ctx.hosts.manager.waitForState('web1', 'online', 20_000);
    await waitFor('the reconnected agent to store the revocation', () => revokedList().includes(oldSerial));
    assert.equal((await t.request('POST', '/api/v1/hosts/web1/ping')).status, 200);
    // After another restart the stored list is still enforced: the old certificate is refused.
    await web1.agent.stop();
    web1.agent = await serveAgent(path.join(web1.configDir, 'config.json'));
    agents.push(web1.agent);
    const refused = await tryAgentConnection(web1.port, {
      cert: old.certPem,
      key: old.keyPem,
      ca: old.caPem,
    });
    assert.match(refused, /^refused/);
    await t.panel.ctx.hosts.manager.waitForState('web1', 'online', 20_000);
    assert.equal((await t.request('POST', '/api/v1/hosts/web1/ping')).status, 200);
  });

  test('deleting a host cuts its live connection at once and the panel never reconnects', async () => {
    const manager = t.panel.ctx.hosts.manager;
    await manager.waitForState('web1', 'online', 20_000);
    const serial = t.panel.ctx.hosts.repo.get('web1')?.cert_serial;
    assert.ok(serial);
    const disconnectsBefore = count(web1.agent.output(), 'panel disconnected');
    const r = await t.request('DELETE', '/api/v1/hosts/web1');
    assert.equal(r.status, 200, r.text);
    assert.equal(manager.status('web1'), null, 'connection gone from the panel at once');
    await waitFor(
      'the agent to see the panel go',
      () => count(web1.agent.output(), 'panel disconnected') > disconnectsBefore,
    );
    const connects = count(web1.agent.output(), 'panel connected');
    // Longer than the reconnect backoff's first steps and two reconcile rounds.
    await new Promise((res) => setTimeout(res, 4_500));
    assert.equal(count(web1.agent.output(), 'panel connected'), connects, 'no reconnection');
    assert.ok(t.panel.ctx.pki.isRevoked(serial), 'certificate revoked');
    const gone = await t.request('GET', '/api/v1/hosts/web1');
    assert.equal(gone.status, 404);
    const ping = await t.request('POST', '/api/v1/hosts/web1/ping');
    assert.equal(ping.status, 404);
    const audit = t.panel.ctx.db
      .prepare("SELECT ok FROM audit_log WHERE action = 'host remove' AND host_id = 'web1'")
      .all();
    assert.equal(audit.length, 1);
    // A new host with the same name gets a new id: the revoked certificate never names it.
    const again = await addHost('web1', web1.port);
    assert.notEqual(again.host.id, 'web1');
    assert.match(again.host.id, /^web1-[0-9a-f]{6}$/);
  });

  test('a revoked token is refused; of two concurrent uses of one token exactly one succeeds', async () => {
    const { csrPem } = await createCsr('x');
    const rev = await addHost('web-revoked', await freePort());
    const del = await t.request<{ data: { revoked: number } }>('DELETE', '/api/v1/hosts/web-revoked/token');
    assert.equal(del.status, 200, del.text);
    assert.equal(del.body.data.revoked, 1);
    const r = await t.request<{ error: { message: string } }>('POST', '/enroll', {
      token: null,
      body: { token: rev.token, csr: csrPem },
    });
    assert.equal(r.status, 403);
    assert.match(r.body.error.message, /revoked/);

    // A token older than the host's last enrollment (only reachable by writing the table, since
    // issuing a token revokes the older ones) cannot enroll a host that holds a live certificate.
    const stale = `pjt_${'s'.repeat(43)}`;
    const { at: enrolledAt } = t.panel.ctx.db
      .prepare("SELECT MAX(used_at) AS at FROM join_tokens WHERE host_id = 'alpha'")
      .get() as { at: number };
    t.panel.ctx.db
      .prepare('INSERT INTO join_tokens (host_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run('alpha', createHash('sha256').update(stale).digest('hex'), enrolledAt - 1, Date.now() + 60_000);
    const second = await t.request<{ error: { code: string; message: string } }>('POST', '/enroll', {
      token: null,
      body: { token: stale, csr: csrPem },
    });
    assert.equal(second.status, 409, second.text);
    assert.match(second.body.error.message, /already holds a live certificate/);

    const race = await addHost('web-race', await freePort());
    const replies = await Promise.all(
      [1, 2, 3].map(() =>
        t.request('POST', '/enroll', { token: null, body: { token: race.token, csr: csrPem } }),
      ),
    );
    assert.deepEqual(
      replies.map((x) => x.status).sort(),
      [201, 403, 403],
      replies.map((x) => x.text).join('\n'),
    );
    const certs = t.panel.ctx.db
      .prepare("SELECT COUNT(*) AS n FROM certificates WHERE host_id = 'web-race'")
      .get() as { n: number };
    assert.equal(certs.n, 1);
  });

  test('bad input to host add and the enrollment endpoint gets clear errors', async () => {
    const bad: [unknown, unknown, RegExp][] = [
      ['web;rm -rf /', '127.0.0.1', /letters, digits and dashes/],
      ['../etc', '127.0.0.1', /letters, digits and dashes/],
      ['ok-name', '127.0.0.1:99999', /port/],
      ['ok-name', 'a b', /white space/],
      ['ok-name', "x';DROP/**/TABLE/**/hosts;--", /not an IP address or a DNS name/],
      ['ok-name', 'exa\u0000mple.com', /control characters/],
      ['wеb', '127.0.0.1', /letters, digits and dashes/], // Cyrillic "е"
      ['x'.repeat(64), '127.0.0.1', /too long/],
    ];
    const before = t.panel.ctx.hosts.repo.list().length;
    for (const [name, address, msg] of bad) {
      const r = await t.request<{ error: { code: string; message: string } }>('POST', '/api/v1/hosts', {
        body: { name, address },
      });
      assert.equal(r.status, 400, `${String(name)} ${String(address)}: ${r.text}`);
      assert.equal(r.body.error.code, 'invalid-argument');
      assert.match(r.body.error.message, msg);
    }
    assert.equal(t.panel.ctx.hosts.repo.list().length, before, 'nothing created');
    const dup = await t.request('POST', '/api/v1/hosts', { body: { name: 'alpha', address: '127.0.0.1' } });
    assert.equal(dup.status, 409);
    // Operators manage hosts (docs/dashboard.md, as on the dashboard); viewers only read.
    const viewer = await t.request('POST', '/api/v1/hosts', {
      body: { name: 'v1', address: '127.0.0.1' },
      token: t.token('viewer'),
    });
    assert.equal(viewer.status, 403);
    assert.equal(t.panel.ctx.hosts.repo.list().length, before, 'nothing created by a viewer');
    const notJson = await t.request<{ error: { code: string } }>('POST', '/enroll', {
      token: null,
      rawBody: '{not json',
    });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.error.code, 'invalid-argument');
    const badCsr = await t.request<{ error: { message: string } }>('POST', '/enroll', {
      token: null,
      body: { token: 'pjt_x', csr: 'hello' },
    });
    assert.equal(badCsr.status, 403, badCsr.text);
  });

  // Last: it leaves 127.0.0.1 rate-limited on this panel.
  test('guessing tokens is rate-limited', async () => {
    const { csrPem } = await createCsr('x');
    let status = 0;
    let sent = 0;
    let body = '';
    while (sent < 40) {
      const r = await t.request('POST', '/enroll', {
        token: null,
        body: { token: `pjt_${String(sent).padStart(43, 'g')}`, csr: csrPem },
      });
      sent++;
      status = r.status;
      body = r.text;
      if (status === 429) break;
      assert.equal(status, 403, r.text);
    }
    assert.equal(status, 429, 'limited');
    assert.ok(sent <= 31, `limited after ${sent} requests`);
    assert.match(body, /"code":"rate-limited"/);
    const ca = await t.request('GET', '/enroll/ca', { token: null });
    assert.equal(ca.status, 200, 'fetching the CA has its own limit');
  });
});
