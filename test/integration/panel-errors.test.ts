import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { enrollWith, freePort, lightSandbox, serveAgent } from '../helpers/enroll.ts';
import type { AgentProcess } from '../helpers/agent-process.ts';

// The REST API's error statuses against a real agent process: 400 refused by the panel itself
// (never sent), 501 module not on that host, 504 no answer in time (agent frozen with SIGSTOP),
// 502 agent offline; and token expiry. See docs/api.md "Replies".

let t: TestPanel;
let agent: AgentProcess;
type ErrorBody = { error: { code: string; message: string } };

const audit = (hostId: string): { action: string; error_code: string | null; params: string }[] =>
  t.panel.ctx.db
    .prepare('SELECT action, error_code, params FROM audit_log WHERE host_id = ? ORDER BY id')
    .all(hostId) as { action: string; error_code: string | null; params: string }[];

before(async () => {
  t = await startTestPanel();
  const port = await freePort();
  const added = await t.request<{ data: { command: string } }>('POST', '/api/v1/hosts', {
    body: { name: 'slow', address: `127.0.0.1:${port}` },
  });
  assert.equal(added.status, 201, added.text);
  const sbx = lightSandbox('errors');
  const r = await enrollWith(added.body.data.command, sbx.dir, port);
  assert.equal(r.code, 0, r.stderr);
  agent = await serveAgent(sbx.configFile);
  await t.panel.ctx.hosts.manager.waitForState('slow', 'online', 20_000);
});

after(async () => {
  if (agent.proc.pid !== undefined) {
    try {
      process.kill(agent.proc.pid, 'SIGCONT');
    } catch {
      /* already gone */
    }
  }
  await agent.kill();
  await t.close();
});

test('bad input is refused by the panel with the contract wording, audited, never sent', async () => {
  const ok = await t.request('POST', '/api/v1/hosts/slow/ping');
  assert.equal(ok.status, 200, ok.text);
  const before = audit('slow').length;
  // A frozen agent would make any call that reaches it wait for the timeout (504): a prompt 400
  // proves the panel refused the request itself.
  assert.ok(agent.proc.pid);
  process.kill(agent.proc.pid, 'SIGSTOP');
  try {
    const hostile: [string, unknown, RegExp][] = [
      ['/websites', { domain: 'a..com' }, /domain/i],
      ['/websites', { domain: 'x.com; rm -rf /' }, /domain/i],
      ['/websites', { domain: 'ok.example', evil: true }, /unknown field\(s\) evil/],
      [
        '/ftp-users',
        { username: 'bob\nroot', password: 'long enough pw', home: '/var/www/a.com' },
        /username/i,
      ],
      ['/databases', { name: 'test; shutdown' }, /name/i],
      ['/firewall/rules', { action: 'allow', protocol: 'tcp', port: '22 -j ACCEPT' }, /port/i],
    ];
    for (const [route, body, msg] of hostile) {
      const started = Date.now();
      const r = await t.request<ErrorBody>('POST', `/api/v1/hosts/slow${route}`, { body });
      assert.equal(r.status, 400, `${route} ${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.error.code, 'invalid-argument');
      assert.match(r.body.error.message, msg);
      assert.ok(Date.now() - started < 3_000, 'answered by the panel, not after an agent timeout');
    }
  } finally {
    process.kill(agent.proc.pid, 'SIGCONT');
  }
  const rows = audit('slow').slice(before);
  assert.equal(rows.length, 6, 'each refused mutation is in the audit log');
  assert.ok(rows.every((r) => r.error_code === 'invalid-argument'));
  assert.ok(!rows.some((r) => r.params.includes('long enough pw')), 'password redacted in the audit');
});

test('a module the host does not run answers 501 unsupported', async () => {
  const r = await t.request<ErrorBody>('GET', '/api/v1/hosts/slow/websites');
  assert.equal(r.status, 501, r.text);
  assert.equal(r.body.error.code, 'unsupported');
});

test('an agent that does not answer in time gives 504 timeout; it answers again once resumed', async () => {
  assert.ok(agent.proc.pid);
  process.kill(agent.proc.pid, 'SIGSTOP');
  let r;
  try {
    r = await t.request<ErrorBody>('POST', '/api/v1/hosts/slow/ping');
  } finally {
    process.kill(agent.proc.pid, 'SIGCONT');
  }
  assert.equal(r.status, 504, r.text);
  assert.equal(r.body.error.code, 'timeout');
  assert.match(r.body.error.message, /did not answer "ping" within \d+ s/);
  const again = await t.request('POST', '/api/v1/hosts/slow/ping');
  assert.equal(again.status, 200, again.text);
});

test('an offline agent gives 502 unavailable at once', async () => {
  await agent.kill();
  await t.panel.ctx.hosts.manager.waitForState('slow', 'offline', 20_000);
  const started = Date.now();
  const r = await t.request<ErrorBody>('GET', '/api/v1/hosts/slow/system');
  assert.equal(r.status, 502, r.text);
  assert.equal(r.body.error.code, 'unavailable');
  assert.match(r.body.error.message, /Host slow is (offline|connecting)/);
  assert.ok(Date.now() - started < 2_000, 'no waiting for an offline host');
});

test('an expired API token is refused with 401 at once', async () => {
  const { token } = t.panel.ctx.apiTokens.create({
    name: 'expired',
    role: 'admin',
    createdBy: null,
    expiresAt: Date.now() - 1_000,
  });
  const r = await t.request<ErrorBody>('GET', '/api/v1/hosts', { token });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.body.error.code, 'unauthenticated');
  const live = t.panel.ctx.apiTokens.create({
    name: 'live',
    role: 'viewer',
    createdBy: null,
    expiresAt: Date.now() + 60_000,
  });
  const ok = await t.request('GET', '/api/v1/hosts', { token: live.token });
  assert.equal(ok.status, 200, ok.text);
});
