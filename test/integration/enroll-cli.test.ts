import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { ROOT, type AgentProcess } from '../helpers/agent-process.ts';
import {
  enrollWith,
  freePort,
  lightSandbox,
  parseEnrollCommand,
  serveAgent,
  type CliResult,
} from '../helpers/enroll.ts';

let t: TestPanel;
let agent: AgentProcess | null = null;
const dirs: string[] = [];

function panelCli(args: string[]): Promise<CliResult> {
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
});
after(async () => {
  await agent?.stop();
  await t.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('ponio-panel host add / list / remove against a running panel, with a real agent', async () => {
  const port = await freePort();
  const add = await panelCli([
    'host',
    'add',
    'cli1',
    '--address',
    `127.0.0.1:${port}`,
    '--public-url',
    t.url,
  ]);
  assert.equal(add.code, 0, add.stderr);
  const line = add.stdout.split('\n').find((l) => l.trim().startsWith('ponio-agent enroll'));
  assert.ok(line, add.stdout);
  const command = line.trim();
  assert.equal(parseEnrollCommand(command).panel, t.url);

  const sbx = lightSandbox('cli');
  dirs.push(sbx.dir);
  const enrolled = await enrollWith(command, sbx.dir, port);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  agent = await serveAgent(sbx.configFile);
  await t.panel.ctx.hosts.manager.waitForState('cli1', 'online', 20_000);

  const list = await panelCli(['host', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as { id: string; status: string; certificate: string | null }[];
  const row = rows.find((r) => r.id === 'cli1');
  assert.equal(row?.status, 'enrolled');
  assert.ok(row.certificate);

  const bad = await panelCli(['host', 'add', 'bad;name', '--address', '127.0.0.1']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /letters, digits and dashes/);
  const missing = await panelCli(['host', 'remove', 'no-such-host']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No host/);

  // Removed from another process: the running panel drops the connection and never reconnects.
  const rm = await panelCli(['host', 'remove', 'cli1']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /Removed host cli1/);
  const end = Date.now() + 10_000;
  while (t.panel.ctx.hosts.manager.status('cli1') !== null) {
    assert.ok(Date.now() < end, 'the panel dropped the connection within seconds');
    await new Promise((r) => setTimeout(r, 100));
  }
  const connects = agent.output().split('"msg":"panel connected"').length;
  await new Promise((r) => setTimeout(r, 3_000));
  assert.equal(agent.output().split('"msg":"panel connected"').length, connects, 'no reconnection');
  assert.ok(t.panel.ctx.pki.isRevoked(row.certificate));
  const audit = t.panel.ctx.db
    .prepare(
      "SELECT actor_kind FROM audit_log WHERE host_id = 'cli1' AND action IN ('host add', 'host remove')",
    )
    .all() as { actor_kind: string }[];
  assert.deepEqual(
    audit.map((a) => a.actor_kind),
    ['cli', 'cli'],
  );
});

test("the panel's HTTPS certificate names the publicUrl host (agents check it when enrolling)", async () => {
  const p = await startTestPanel({
    publicUrl: 'https://panel.enroll.test:8443',
    serverNames: ['192.0.2.10'],
  });
  try {
    const san = new X509Certificate(p.panel.ctx.pki.serverTls().certPem).subjectAltName ?? '';
    assert.match(san, /DNS:panel\.enroll\.test/);
    assert.match(san, /IP Address:192\.0\.2\.10/);
    // (publicUrl does not resolve here, so the API is driven in-process, as the dashboard does.)
    const e = p.panel.ctx.enrollment;
    assert.ok(e);
    const n = e.addHost(
      { kind: 'user', name: 'admin', role: 'admin' },
      { name: 'named', address: 'named.example:7443' },
    );
    assert.equal(parseEnrollCommand(n.command).panel, 'https://panel.enroll.test:8443');
  } finally {
    await p.close();
  }
});
