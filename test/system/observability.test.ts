import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { promtool, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.ts';
import { ROOT } from '../helpers/agent-process.ts';
import { WebClient } from '../helpers/web-client.ts';
import type { RunningAgent } from '../../agent/main.ts';
import type { Actor } from '../../server/db/audit.ts';

const TOKEN = 'metrics-token-for-the-observability-test';
const NO_MODULES = { websites: false, ftp: false, mysql: false, firewall: false };
const admin: Actor = { kind: 'cli', name: 'test', role: 'admin' };

let tp: TestPanel;
let agent: RunningAgent;
let prom: RunningPrometheus;

before(async () => {
  tp = await startTestPanel({ metricsToken: TOKEN });
  ({ agent } = await tp.addSandboxHost('web1', { modules: NO_MODULES }));
  prom = await startPrometheus({
    hostPort: new URL(tp.url).host,
    caPem: tp.panel.ctx.pki.ca.certPem,
    token: TOKEN,
    rulesFile: path.join(ROOT, 'deploy/monitoring/alerts.yml'),
  });
});

after(async () => {
  await prom?.stop();
  await tp?.close();
});

const one = async (expr: string): Promise<number> => {
  const [v] = await prom.waitFor(expr, (vs) => vs.length === 1);
  return v ?? NaN;
};

test('/healthz and /readyz answer without credentials and say nothing more than ok / ready', async () => {
  const h = await tp.request('GET', '/healthz', { token: null });
  assert.equal(h.status, 200);
  assert.equal(h.text, 'ok\n');
  const r = await tp.request('GET', '/readyz', { token: null });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'ready\n');
  assert.equal(r.headers['cache-control'], 'no-store');
});

test('/metrics needs the metrics token: none, an API token or a wrong one get 401', async () => {
  for (const token of [null, tp.adminToken, `${TOKEN}x`]) {
    const r = await tp.request('GET', '/metrics', { token });
    assert.equal(r.status, 401, `token ${String(token)}`);
    assert.equal(r.headers['www-authenticate'], 'Bearer');
    assert.doesNotMatch(r.text, /ponio_/);
  }
  const ok = await tp.request('GET', '/metrics', { token: TOKEN });
  assert.equal(ok.status, 200);
  assert.match(String(ok.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  // promtool parses the exposition format and lints it: a parse error fails; of the lint, only
  // the names of three of prom-client's default gauges (nodejs_active_*_total) are tolerated.
  const check = await promtool(['check', 'metrics'], ok.text);
  const problems = check.out
    .split('\n')
    .filter((l) => l.trim() && !/^nodejs_active_\w+_total non-counter/.test(l));
  assert.deepEqual(problems, [], check.out);
  assert.ok(check.code === 0 || check.code === 3, check.out);
});

test('a real Prometheus scrapes the panel: RPC counters, latency, lock wait and link counters move', async () => {
  assert.equal(await one('up{job="ponio"}'), 1);
  // The panel pushed its revocation list when the link came up: that mutation took the lock once.
  const lockWaitsBefore = await one('ponio_agent_lock_wait_seconds_count{host="web1",module="system"}');
  for (let i = 0; i < 3; i++)
    assert.equal((await tp.request('GET', '/api/v1/hosts/web1/system')).status, 200);
  // The websites module is turned off on this host: the agent answers `unsupported`.
  assert.equal((await tp.request('GET', '/api/v1/hosts/web1/websites')).status, 501);
  // Five mutations of one module at once: they queue for the module lock on the agent.
  const replies = await Promise.all(
    Array.from({ length: 5 }, () =>
      tp.panel.ctx.actions.call(admin, 'web1', 'set revocations', { serials: [] }),
    ),
  );
  assert.ok(replies.every((r) => r.ok));

  await prom.waitFor('ponio_rpc_calls_total{event="system info",outcome="ok"}', (v) => v[0] === 3);
  await prom.waitFor('ponio_rpc_calls_total{event="list websites",outcome="unsupported"}', (v) => v[0] === 1);
  await prom.waitFor('ponio_rpc_calls_total{event="set revocations",outcome="ok"}', (v) => v[0] === 5);
  assert.equal(await one('ponio_rpc_call_duration_seconds_count{event="system info",outcome="ok"}'), 3);
  assert.ok((await one('ponio_rpc_call_duration_seconds_sum{event="system info",outcome="ok"}')) > 0);
  assert.equal(await one('ponio_rpc_calls_in_flight{host="web1"}'), 0);
  // From the agent, over the link, with the host label.
  await prom.waitFor(
    'ponio_agent_lock_wait_seconds_count{host="web1",module="system"}',
    (v) => v[0] === lockWaitsBefore + 5,
  );
  assert.ok((await one('ponio_agent_lock_wait_seconds_sum{host="web1",module="system"}')) > 0);
  assert.equal(await one('ponio_agent_ready{host="web1"}'), 1);
  assert.equal(await one('ponio_host_agent_ready{host="web1"}'), 1);
  assert.equal(await one('ponio_host_agent_scrape_ok{host="web1"}'), 1);
  assert.ok((await one('ponio_agent_resident_memory_bytes{host="web1"}')) > 1e6);
  // Hosts, links, certificates, readiness, process.
  assert.equal(await one('ponio_hosts{state="online",mode="forward"}'), 1);
  assert.equal(await one('ponio_host_online{host="web1"}'), 1);
  assert.equal(await one('ponio_link_connects_total{host="web1"}'), 1);
  // Per-host counters start at 0, so a first failure is an increase the alert rules see.
  assert.equal(await one('ponio_link_disconnects_total{host="web1"}'), 0);
  assert.equal(await one('ponio_certificate_renewal_failures_total{host="web1"}'), 0);
  const expiry = await one('ponio_host_certificate_expiry_timestamp_seconds{host="web1"}');
  assert.equal(expiry, (tp.panel.ctx.hosts.repo.get('web1')?.cert_not_after ?? 0) / 1000);
  assert.equal(await one('ponio_readiness_check{check="database"}'), 1);
  assert.ok((await one('process_resident_memory_bytes{job="ponio"}')) > 1e6);

  // More calls: the counters move by exactly that much.
  for (let i = 0; i < 2; i++)
    assert.equal((await tp.request('GET', '/api/v1/hosts/web1/system')).status, 200);
  await prom.waitFor('ponio_rpc_calls_total{event="system info",outcome="ok"}', (v) => v[0] === 5);
  // The agent counts the calls it answered too (the panel's own scrapes of it included).
  assert.ok((await one('ponio_agent_calls_total{host="web1",module="system",outcome="ok"}')) >= 10);
});

test("the shipped alert rules evaluate on the panel's real series, and every dashboard query runs", async () => {
  const end = Date.now() + 20_000;
  type Rule = { name: string; health: string; lastError?: string; lastEvaluation: string };
  let rules: Rule[] = [];
  while (Date.now() < end) {
    const r = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
      data: { groups: { rules: Rule[] }[] };
    };
    rules = r.data.groups.flatMap((g) => g.rules);
    if (rules.length > 0 && rules.every((x) => x.health === 'ok' && !x.lastEvaluation.startsWith('0001')))
      break;
    await new Promise((res) => setTimeout(res, 250));
  }
  assert.ok(rules.length >= 6, JSON.stringify(rules));
  for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError ?? ''}`);

  const scrape = (await tp.request('GET', '/metrics', { token: TOKEN })).text;
  const served = new Set([...scrape.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  const dash = JSON.parse(
    readFileSync(path.join(ROOT, 'deploy/monitoring/grafana-dashboard.json'), 'utf8'),
  ) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
  assert.ok(exprs.length >= 20);
  for (const { title, expr } of exprs) {
    // Grafana's variables as Grafana would fill them in.
    await prom.query(expr.replaceAll('$__rate_interval', '1m').replaceAll('$host', '.*'));
    for (const [name] of expr.matchAll(/\b(?:ponio|process|nodejs)_[a-z0-9_]+/g)) {
      const family = name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(served.has(family) || served.has(name), `${title}: ${name} is not served by the panel`);
    }
  }
});

test('sign-in failures and rate-limit hits are counted', async () => {
  await tp.signedIn('watcher', 'viewer');
  const anon = new WebClient(tp.url, tp.panel.ctx.pki.ca.certPem);
  let limited = 0;
  for (let i = 0; i < 12; i++) {
    const r = await anon.login('watcher', 'not the password');
    if (r.status === 429) limited++;
  }
  assert.ok(limited >= 1, 'the login limiter answered 429');
  await prom.waitFor('ponio_login_failures_total', (v) => v[0] === 12 - limited);
  await prom.waitFor('ponio_rate_limit_hits_total{limiter="login"}', (v) => v[0] === limited);
});

test('/readyz goes false while another process holds the database write lock, true again after', async () => {
  const dbFile = path.join(tp.dataDir, 'panel.db');
  // A real second process (as a backup tool or a stuck CLI would) takes the write lock and keeps it.
  const holder: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      `const D=require('better-sqlite3');const db=new D(${JSON.stringify(dbFile)});db.exec('BEGIN EXCLUSIVE');` +
        `process.stdout.write('locked\\n');process.stdin.once('data',()=>{db.exec('COMMIT');db.close();process.exit(0)});`,
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout?.once('data', () => resolve());
      holder.once('exit', (c) => reject(new Error(`lock holder exited with ${c}`)));
    });
    const down = await waitForStatus(503);
    assert.equal(down, 'not ready\n');
    await prom.waitFor('ponio_readiness_check{check="database"}', (v) => v[0] === 0);
    assert.equal(await one('ponio_readiness_check{check="migrations"}'), 1);
    // /healthz does not depend on the database.
    assert.equal((await tp.request('GET', '/healthz', { token: null })).status, 200);
  } finally {
    holder.stdin?.end('release\n');
    await exited;
  }
  assert.equal(await waitForStatus(200), 'ready\n');
});

test('jobs are counted by kind and outcome, with their duration', async () => {
  const r = await tp.request<{ data: { id: number } }>('POST', '/api/v1/jobs', {
    body: { event: 'ping', params: {}, target: { all: true } },
  });
  assert.equal(r.status, 202, r.text);
  const end = Date.now() + 20_000;
  for (;;) {
    const j = await tp.request<{ data: { state: string } }>('GET', `/api/v1/jobs/${r.body.data.id}`);
    if (j.body.data.state === 'done') break;
    assert.ok(Date.now() < end, `job still ${j.body.data.state}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  await prom.waitFor('ponio_jobs_total{kind="ping",outcome="succeeded"}', (v) => v[0] === 1);
  assert.equal(await one('ponio_job_duration_seconds_count{kind="ping",outcome="succeeded"}'), 1);
  assert.equal(await one('ponio_jobs_running{kind="ping"}'), 0);
  // The job's host call went through HostActions like any other.
  assert.ok((await one('ponio_rpc_calls_total{event="ping",outcome="ok"}')) >= 1);
});

test('a link that goes down is counted and the host shows offline', async () => {
  await agent.stop();
  await prom.waitFor('ponio_link_disconnects_total{host="web1"}', (v) => v[0] === 1);
  await prom.waitFor('ponio_host_online{host="web1"}', (v) => v[0] === 0);
  await prom.waitFor('ponio_host_agent_scrape_ok{host="web1"}', (v) => v.length === 0);
  // The shipped rule sees it: PonioHostOffline is pending (it fires after 5 minutes).
  await prom.waitFor(
    'ALERTS{alertname="PonioHostOffline",alertstate="pending",host="web1"}',
    (v) => v[0] === 1,
  );
});

test('/readyz goes false when the agent listener stops accepting agents', async () => {
  assert.equal(await waitForStatus(200), 'ready\n');
  assert.equal(await one('ponio_readiness_check{check="agent listener"}'), 1);
  assert.ok(tp.panel.agentListener, 'the test panel runs an agent listener');
  await tp.panel.agentListener.close();
  assert.equal(await waitForStatus(503), 'not ready\n');
  await prom.waitFor('ponio_readiness_check{check="agent listener"}', (v) => v[0] === 0);
});

/** Polls /readyz until it answers `status` (bounded), returns the body. */
async function waitForStatus(status: number): Promise<string> {
  const end = Date.now() + 15_000;
  let last = { status: 0, text: '' };
  while (Date.now() < end) {
    last = await tp.request('GET', '/readyz', { token: null });
    if (last.status === status) return last.text;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`/readyz answered ${last.status} ${last.text}, not ${status}`);
}
