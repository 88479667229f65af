// Switching a host between forward and reverse mode, with one real agent and its certificate
// throughout (no re-enrollment): REST to reverse, the agent's config changed as the reply's steps
// say (connect, no listen) → it dials in and answers; the CLI back to forward against the
// running panel's database → the panel's reconcile dials the agent again; the dashboard form
// without JavaScript; bad input refused with the host left as it was; the audit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { issueCertificate } from '../../shared/pki/index.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { ROOT } from '../helpers/agent-process.ts';
import { freePort } from '../helpers/enroll.ts';
import { listenerUrl } from '../helpers/reverse.ts';
import { quietLogger } from '../helpers/panel-link.ts';

let t: TestPanel;
let agent: RunningAgent | null = null;
let dir = '';
let cfgFile = '';
const MODULES = { websites: false, ftp: false, mysql: false, firewall: false };

async function restartAgent(config: Record<string, unknown>): Promise<RunningAgent> {
  await agent?.stop();
  agent = null;
  writeFileSync(cfgFile, JSON.stringify({ sandbox: dir, modules: MODULES, ...config }));
  agent = await startAgent(loadAgentConfig({ config: cfgFile }, {}), quietLogger);
  return agent;
}

function panelCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin/ponio-panel.js'), ...args, '--data-dir', t.dataDir],
      { cwd: ROOT, timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

before(async () => {
  t = await startTestPanel();
  dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-hm-'));
  const etc = path.join(dir, 'etc/ponio-agent');
  mkdirSync(etc, { recursive: true });
  const issued = await issueCertificate({ ca: t.panel.ctx.pki.ca, role: { kind: 'host', hostId: 'hm1' } });
  writeFileSync(path.join(etc, 'agent.crt'), issued.certPem);
  writeFileSync(path.join(etc, 'agent.key'), issued.keyPem, { mode: 0o600 });
  writeFileSync(path.join(etc, 'ca.crt'), t.panel.ctx.pki.ca.certPem);
  cfgFile = path.join(etc, 'config.json');
  const a = await restartAgent({ listen: '127.0.0.1:0' });
  const repo = t.panel.ctx.hosts.repo;
  repo.insert({ id: 'hm1', name: 'hm1', address: '127.0.0.1', port: a.port });
  repo.markEnrolled('hm1', issued.serial, issued.notAfter.getTime());
  t.panel.ctx.db
    .prepare(
      "INSERT INTO certificates (serial, kind, host_id, issued_at, not_after) VALUES (?, 'host', 'hm1', ?, ?)",
    )
    .run(issued.serial, Date.now(), issued.notAfter.getTime());
  t.panel.ctx.hosts.connect(repo.get('hm1')!);
  await t.panel.ctx.hosts.manager.waitForState('hm1', 'online', 15_000);
});
after(async () => {
  await agent?.stop();
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('bad input is refused with a sentence and the host stays as it was', async () => {
  const before = t.panel.ctx.hosts.repo.get('hm1');
  for (const [body, status] of [
    [{ mode: 'sideways' }, 400],
    [{}, 400],
    [{ mode: 'reverse', address: '10.0.0.9' }, 400],
    [{ mode: 'forward', address: 'bad host;rm -rf /' }, 400],
    [{ mode: 'forward', address: `127.0.0.1:${before?.port ?? 0}` }, 409],
  ] as const) {
    const r = await t.request<any>('PUT', '/api/v1/hosts/hm1/mode', { body });
    assert.equal(r.status, status, r.text);
    assert.match(r.body.error.message as string, /\w+ \w+/);
  }
  assert.deepEqual(t.panel.ctx.hosts.repo.get('hm1'), before);
  assert.equal(t.panel.ctx.hosts.manager.status('hm1')?.state, 'online');
  const viewer = await t.request<any>('PUT', '/api/v1/hosts/hm1/mode', {
    body: { mode: 'reverse' },
    token: t.token('viewer'),
  });
  assert.equal(viewer.status, 403);
});

test('forward → reverse by REST, the agent config changed as told: it dials in with the same certificate', async () => {
  const certBefore = readFileSync(path.join(dir, 'etc/ponio-agent/agent.crt'), 'utf8');
  const r = await t.request<any>('PUT', '/api/v1/hosts/hm1/mode', { body: { mode: 'reverse' } });
  assert.equal(r.status, 200, r.text);
  const d = r.body.data;
  assert.equal(d.host.mode, 'reverse');
  assert.equal(d.host.address, null);
  assert.equal(d.host.port, null);
  assert.equal(d.previous.mode, 'forward');
  assert.match(d.command as string, /^ponio-agent enroll .* --force$/);
  assert.ok(
    (d.steps as string[]).some((s) => s.includes(`"connect": ["${listenerUrl(t)}"]`)),
    d.steps,
  );
  // The panel stopped dialing and waits for the agent.
  assert.equal(t.panel.ctx.hosts.manager.target('hm1')?.mode, 'reverse');
  assert.notEqual(t.panel.ctx.hosts.manager.status('hm1')?.state, 'online');

  const a = await restartAgent({ connect: [listenerUrl(t)] });
  assert.equal(a.port, 0, 'no listening port in reverse mode');
  await t.panel.ctx.hosts.manager.waitForState('hm1', 'online', 15_000);
  const ping = await t.request<any>('POST', '/api/v1/hosts/hm1/ping');
  assert.equal(ping.status, 200, ping.text);
  const shown = await t.request<any>('GET', '/api/v1/hosts/hm1');
  assert.equal(shown.body.data.mode, 'reverse');
  assert.equal(shown.body.data.connection.adapter, 'sandbox');
  assert.equal(readFileSync(path.join(dir, 'etc/ponio-agent/agent.crt'), 'utf8'), certBefore);
});

test('reverse → forward by the CLI while the panel runs: it dials the agent again', async () => {
  const port = await freePort();
  const cli = await panelCli(['host', 'mode', 'hm1', 'forward', '--address', `127.0.0.1:${port}`]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /now in forward mode: the panel connects to 127\.0\.0\.1:\d+/);
  assert.match(cli.stdout, /remove "connect"/);
  // The running panel picks the change up from the database (reconcile loop).
  const end = Date.now() + 10_000;
  while (t.panel.ctx.hosts.manager.target('hm1')?.mode === 'reverse') {
    assert.ok(Date.now() < end, 'the running panel switched the host to forward');
    await new Promise((r) => setTimeout(r, 100));
  }
  await restartAgent({ listen: `127.0.0.1:${port}` });
  await t.panel.ctx.hosts.manager.waitForState('hm1', 'online', 20_000);
  const ping = await t.request<any>('POST', '/api/v1/hosts/hm1/ping');
  assert.equal(ping.status, 200, ping.text);
  const again = await panelCli(['host', 'mode', 'hm1', 'forward', '--address', `127.0.0.1:${port}`]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already in forward mode/);
});

test('the dashboard form works without JavaScript, and every switch is audited', async () => {
  const web = await t.signedIn('hm-operator', 'operator');
  const page = await web.get('/hosts/hm1');
  assert.match(page.text, /id="switch-mode"/);
  assert.match(page.text, /forward: the panel connects to 127\.0\.0\.1:/);
  const r = await web.submit('/hosts/hm1', '/hosts/hm1/mode', { mode: 'reverse' });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.match(r.text, /hm1 is now in reverse mode/);
  assert.match(r.text, /id="mode-steps"/);
  assert.match(r.text, /ponio-agent enroll .*--force/);
  const after = await web.get('/hosts/hm1');
  assert.match(after.text, /reverse: the agent connects to the panel/);
  const audit = t.panel.ctx.db
    .prepare("SELECT actor, params FROM audit_log WHERE action = 'host mode' AND host_id = 'hm1' ORDER BY id")
    .all() as { actor: string; params: string }[];
  assert.equal(audit.length, 3);
  assert.deepEqual(
    audit.map((a) => (JSON.parse(a.params) as { mode: string }).mode),
    ['reverse', 'forward', 'reverse'],
  );
  assert.match(audit[1]?.actor ?? '', /^cli:/);
});
