// Fan-out jobs against dozens of real agents (one process of 40 real agents, instrumented from
// the agents' side: test/helpers/fleet-agents.ts) plus hosts that are offline: labels, targets
// and preview, the sliding window measured where the calls arrive, the failure threshold,
// retry, cancel, dry run, capability skips, per-host deadlines, roles, the audit, and hosts
// lost during a call.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { startFleet, maxOverlap, type Fleet } from '../helpers/fleet.ts';
import { issueCertificate } from '../../shared/pki/index.ts';

let t: TestPanel;
let fleet: Fleet;
const OFFLINE = ['jboff0', 'jboff1', 'jboff2'];
const web: string[] = [];
const db: string[] = [];

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitJob(id: number, timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await t.request<any>('GET', `/api/v1/jobs/${id}`);
    assert.equal(r.status, 200, r.text);
    if (r.body.data.state !== 'queued' && r.body.data.state !== 'running') return r.body.data;
    if (Date.now() > until) throw new Error(`job ${id} still ${r.body.data.state}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function startJob(body: unknown, token?: string): Promise<number> {
  const r = await t.request<any>('POST', '/api/v1/jobs', { body, ...(token ? { token } : {}) });
  assert.equal(r.status, 202, r.text);
  assert.equal(typeof r.body.data.id, 'number');
  return r.body.data.id as number;
}

before(async () => {
  t = await startTestPanel({ jobLeaseSeconds: 2 });
  fleet = await startFleet(t.panel, 'jb', 40);
  for (const [i, id] of fleet.hostIds.entries()) {
    (i < 30 ? web : db).push(id);
    const r = await t.request('PUT', `/api/v1/hosts/${id}/labels`, {
      body: { labels: { role: i < 30 ? 'web' : 'db', dc: i % 2 === 0 ? 'ams' : 'fra' } },
    });
    assert.equal(r.status, 200, r.text);
  }
  // Enrolled hosts whose agent is not running: unreachable.
  for (const id of OFFLINE) {
    const issued = await issueCertificate({ ca: t.panel.ctx.pki.ca, role: { kind: 'host', hostId: id } });
    t.panel.ctx.hosts.repo.insert({ id, name: id, address: '127.0.0.1', port: await closedPort() });
    t.panel.ctx.hosts.repo.markEnrolled(id, issued.serial, issued.notAfter.getTime());
    const row = t.panel.ctx.hosts.repo.get(id);
    if (row) t.panel.ctx.hosts.connect(row);
    await t.panel.ctx.hosts.manager.waitForState(id, 'offline', 10_000);
    await t.request('PUT', `/api/v1/hosts/${id}/labels`, { body: { labels: 'role=web dc=ams' } });
  }
});

after(async () => {
  await fleet?.stop();
  await t?.close();
});

describe('labels', () => {
  test('set through the API, shown on hosts, validated, audited, operator only', async () => {
    const one = await t.request<any>('GET', `/api/v1/hosts/${web[0]}`);
    assert.deepEqual(one.body.data.labels, { role: 'web', dc: 'ams' });
    const bad = [
      { labels: 'role=web\nrm=-rf' },
      { labels: 'role=../etc' },
      { labels: 'role=web role=db' },
      { labels: { Role: 'web' } },
      { labels: { role: 'x'.repeat(64) } },
      { labels: { role: 'wéb' } },
      { labels: { role: 5 } },
      { labels: Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',') },
    ];
    for (const body of bad) {
      const r = await t.request<any>('PUT', `/api/v1/hosts/${web[0]}/labels`, { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, 'invalid-argument');
      assert.match(r.body.error.message, /label|twice|at most/);
    }
    assert.deepEqual((await t.request<any>('GET', `/api/v1/hosts/${web[0]}/labels`)).body.data, {
      role: 'web',
      dc: 'ams',
    });
    const viewer = await t.request('PUT', `/api/v1/hosts/${web[0]}/labels`, {
      body: { labels: 'role=db' },
      token: t.token('viewer'),
    });
    assert.equal(viewer.status, 403);
    const audit = await t.request<any>('GET', `/api/v1/audit?action=host%20labels&host=${web[0]}`);
    assert.equal(audit.body.data.entries.length, 1);
  });
});

describe('targets', () => {
  test('preview: selector, list, module, exclusions; bad targets refused', async () => {
    const p = await t.request<any>('POST', '/api/v1/jobs/preview', {
      body: { target: { selector: 'role=web,dc!=fra' }, event: 'ping' },
    });
    assert.equal(p.status, 200, p.text);
    const expected = [...web.filter((_, i) => i % 2 === 0), ...OFFLINE].sort();
    assert.deepEqual(p.body.data.hosts.map((h: { id: string }) => h.id).sort(), expected);
    assert.match(p.body.data.summary, new RegExp(`^${expected.length} hosts match: .*3 not online`));
    const listed = await t.request<any>('POST', '/api/v1/jobs/preview', {
      body: { target: { hosts: [web[1], db[0], 'JBOFF0'], exclude: [db[0]] } },
    });
    assert.deepEqual(
      listed.body.data.hosts.map((h: { id: string }) => h.id).sort(),
      [web[1], 'jboff0'].sort(),
    );
    const mod = await t.request<any>('POST', '/api/v1/jobs/preview', {
      body: { target: { module: 'system' } },
    });
    assert.equal(mod.body.data.count, 40, 'the offline hosts never said hello');
    const fw = await t.request<any>('POST', '/api/v1/jobs/preview', {
      body: { target: { module: 'firewall' } },
    });
    assert.equal(fw.body.data.count, 0);
    const cap = await t.request<any>('POST', '/api/v1/jobs/preview', {
      body: { target: { all: true }, event: 'block ip' },
    });
    assert.equal(cap.body.data.count, 43);
    assert.match(cap.body.data.summary, /40 without the module/);
    for (const target of [
      {},
      { hosts: ['nope'] },
      { selector: 'role==web' },
      { selector: 'a=b,,c' },
      { all: 'yes' },
    ]) {
      const r = await t.request<any>('POST', '/api/v1/jobs/preview', { body: { target } });
      assert.equal(r.status, 400, JSON.stringify(target));
      assert.equal(r.body.error.code, 'invalid-argument');
    }
  });
});

describe('jobs', () => {
  test('bad requests are refused before anything starts', async () => {
    await fleet.reset();
    const bodies: [unknown, RegExp][] = [
      [{ event: 'rm -rf', target: { all: true } }, /not an event a job can run/],
      [
        { event: 'set revocations', params: { serials: [] }, target: { all: true } },
        /not an event a job can run/,
      ],
      [
        { event: 'block ip', params: { address: '1.2.3.4; reboot' }, target: { all: true } },
        /^block ip: address/,
      ],
      [{ event: 'block ip', params: {}, target: { all: true } }, /^block ip: address/],
      [
        {
          event: 'ping',
          params: { requestId: '00000000-0000-4000-8000-000000000000' },
          target: { all: true },
        },
        /requestId/,
      ],
      [{ event: 'ping', params: { deadlineMs: 5000 }, target: { all: true } }, /deadlineMs out/],
      [{ event: 'ping', target: { all: true }, window: 0 }, /window/],
      [{ event: 'ping', target: { all: true }, window: '150%' }, /at most 100%/],
      [{ event: 'ping', target: { all: true }, failThreshold: 'x' }, /failThreshold/],
      [{ event: 'ping', target: { selector: 'role=web', nosuch: 1 } }, /unknown field/],
      [{ event: 'ping', target: { selector: 'role=nomatch' } }, /No host matches/],
    ];
    for (const [body, msg] of bodies) {
      const r = await t.request<any>('POST', '/api/v1/jobs', { body });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.error.code, 'invalid-argument');
      assert.match(r.body.error.message, msg);
    }
    assert.equal((await fleet.stats()).calls.length, 0, 'no agent was called');
    assert.equal((await t.request<any>('GET', '/api/v1/jobs')).body.data.length, 0, 'no job was stored');
  });

  test('roles as for the event: a viewer runs reads, not mutations', async () => {
    const viewer = t.token('viewer');
    const refused = await t.request<any>('POST', '/api/v1/jobs', {
      body: { event: 'block ip', params: { address: '203.0.113.9' }, target: { all: true } },
      token: viewer,
    });
    assert.equal(refused.status, 403);
    assert.match(refused.body.error.message, /needs operator/);
    const id = await startJob({ event: 'ping', target: { hosts: [web[0]] } }, viewer);
    const job = await waitJob(id);
    assert.equal(job.state, 'done');
    assert.equal(job.counts.ok, 1);
    assert.equal(job.actor, 'token:test-viewer');
  });

  test('sliding window: never more in flight than the window (agents’ side), every host recorded', async () => {
    await fleet.set({ delayMs: 150, failHosts: [] });
    await fleet.reset();
    const id = await startJob({ event: 'ping', target: { selector: 'role=web' }, window: 5 });
    const job = await waitJob(id);
    const stats = await fleet.stats();
    assert.equal(stats.maxInFlight, 5, 'the window was used and never exceeded');
    assert.equal(maxOverlap(stats.calls), 5);
    assert.equal(stats.calls.length, 30);
    assert.equal(job.state, 'done');
    assert.deepEqual(
      { ok: job.counts.ok, unreachable: job.counts.unreachable, failed: job.counts.failed },
      { ok: 30, unreachable: 3, failed: 0 },
    );
    assert.equal(job.recap, '33 hosts: ok=30 failed=0 unreachable=3 timeout=0 skipped=0');
    const okHost = job.hosts.find((h: any) => h.state === 'ok');
    assert.equal(okHost.data.pong, true);
    const off = job.hosts.find((h: any) => h.hostId === 'jboff0');
    assert.equal(off.state, 'unreachable');
    assert.equal(off.errorCode, 'unavailable');
    // Sliding, not batches: a host starts as soon as one finishes (the 6th call starts before
    // the last of the first five ends only if the window slid; with equal delays starts follow ends).
    const starts = stats.calls.map((c) => c.start).sort((a, b) => a - b);
    assert.ok((starts[29] ?? 0) - (starts[0] ?? 0) < 30 * 150, 'calls overlapped');
    // The audit records the job and each host call under it (reads included).
    const audit = await t.request<any>('GET', `/api/v1/audit?job=${id}&limit=500`);
    const actions = audit.body.data.entries.map((e: { action: string }) => e.action);
    assert.equal(actions.filter((a: string) => a === 'ping').length, 33);
    assert.ok(actions.includes('job start') && actions.includes('job end'));
    const filtered = await t.request<any>('GET', `/api/v1/jobs/${id}?hostState=unreachable`);
    assert.equal(filtered.body.data.hosts.length, 3);
  });

  test('a window in percent: 10% of 40 hosts is 4', async () => {
    await fleet.set({ delayMs: 100 });
    await fleet.reset();
    const id = await startJob({ event: 'ping', target: { module: 'system' }, window: '10%' });
    const job = await waitJob(id);
    assert.equal(job.counts.ok, 40);
    assert.equal((await fleet.stats()).maxInFlight, 4);
  });

  test('the failure threshold stops new starts; failed and unreachable are counted apart; retry reaches only them', async () => {
    const failing = web.slice(0, 4);
    await fleet.set({ delayMs: 50, failHosts: failing });
    await fleet.reset();
    // role=web in name order: the 30 fleet hosts (jb000…) first, then the 3 offline ones.
    const id = await startJob({
      event: 'ping',
      target: { selector: 'role=web' },
      window: 2,
      failThreshold: 2,
    });
    const job = await waitJob(id);
    assert.equal(job.state, 'stopped');
    assert.match(job.message, /^Stopped: [34] hosts failed, unreachable or timed out \(threshold 2\)/);
    assert.ok(job.counts.failed >= 3 && job.counts.failed <= 4, JSON.stringify(job.counts));
    assert.ok(job.counts.skipped >= 20, 'most hosts never started');
    const skipped = job.hosts.filter((h: any) => h.state === 'skipped');
    assert.ok(skipped.every((h: any) => h.errorCode === 'threshold' && h.startedAt === null));
    const called = new Set((await fleet.stats()).calls.map((c) => c.hostId));
    for (const h of skipped) assert.ok(!called.has(h.hostId), `${h.hostId} was skipped yet called`);
    const failedHost = job.hosts.find((h: any) => h.state === 'failed');
    assert.equal(failedHost.errorCode, 'failed-precondition');
    assert.match(failedHost.message, /injected failure/);

    // Without a threshold: failed and unreachable are shown apart.
    await fleet.reset();
    const all = await waitJob(
      await startJob({ event: 'ping', target: { selector: 'role=web' }, window: 10 }),
    );
    assert.equal(all.state, 'done');
    assert.deepEqual([all.counts.ok, all.counts.failed, all.counts.unreachable], [26, 4, 3]);

    // Retry: only the failed and unreachable hosts are called again.
    await fleet.set({ failHosts: [] });
    await fleet.reset();
    const r = await t.request<any>('POST', `/api/v1/jobs/${all.id}/retry`, { body: {} });
    assert.equal(r.status, 202, r.text);
    const retried = await waitJob(all.id);
    const calledAgain = (await fleet.stats()).calls.map((c) => c.hostId).sort();
    assert.deepEqual(calledAgain, [...failing].sort(), 'the ok hosts were not called again');
    assert.deepEqual([retried.counts.ok, retried.counts.failed, retried.counts.unreachable], [30, 0, 3]);
    assert.equal(retried.hosts.find((h: any) => h.hostId === failing[0]).attempts, 2);
    assert.equal(retried.hosts.find((h: any) => h.hostId === web[10]).attempts, 1);
    const again = await t.request<any>('POST', `/api/v1/jobs/${all.id}/cancel`, { body: {} });
    assert.equal(again.status, 409, 'a finished job cannot be cancelled');
  });

  test('cancel: no new host starts, calls in flight finish and are recorded', async () => {
    await fleet.set({ delayMs: 400, failHosts: [] });
    await fleet.reset();
    const id = await startJob({ event: 'ping', target: { module: 'system' }, window: 3 });
    const until = Date.now() + 10_000;
    while ((await fleet.stats()).calls.length < 3 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    const c = await t.request<any>('POST', `/api/v1/jobs/${id}/cancel`, { body: {} });
    assert.equal(c.status, 200, c.text);
    const job = await waitJob(id);
    assert.equal(job.state, 'cancelled');
    const stats = await fleet.stats();
    assert.equal(job.counts.ok, stats.calls.length, 'every call that reached an agent is recorded ok');
    assert.ok(job.counts.ok >= 3 && job.counts.ok <= 9, `few hosts ran (${job.counts.ok})`);
    assert.equal(job.counts.skipped, 40 - job.counts.ok);
    assert.ok(
      job.hosts.filter((h: any) => h.state === 'skipped').every((h: any) => h.errorCode === 'cancelled'),
    );
    assert.match(job.recap, /^40 hosts: ok=\d+ failed=0 unreachable=0 timeout=0 skipped=\d+$/);
    // Resume runs the hosts the cancel skipped, and only those.
    await fleet.set({ delayMs: 0 });
    await fleet.reset();
    const res = await t.request<any>('POST', `/api/v1/jobs/${id}/resume`, { body: {} });
    assert.equal(res.status, 202, res.text);
    const resumed = await waitJob(id);
    assert.equal(resumed.counts.ok, 40);
    assert.equal((await fleet.stats()).calls.length, 40 - job.counts.ok);
  });

  test('dry run and capability: nothing is called; hosts without the module are skipped', async () => {
    await fleet.reset();
    const dry = await waitJob(
      await startJob({
        event: 'block ip',
        params: { address: '203.0.113.9' },
        target: { all: true },
        dryRun: true,
      }),
    );
    assert.equal(dry.state, 'done');
    assert.equal(dry.dryRun, true);
    assert.deepEqual([dry.counts.skipped, dry.counts.unreachable], [40, 3]);
    const sk = dry.hosts.find((h: any) => h.state === 'skipped');
    assert.equal(sk.errorCode, 'capability');
    assert.match(sk.message, /does not offer firewall: firewall is turned off/);
    const dryPing = await waitJob(
      await startJob({ event: 'ping', target: { hosts: [web[0]] }, dryRun: true }),
    );
    assert.equal(dryPing.hosts[0].errorCode, 'dry-run');
    const real = await waitJob(
      await startJob({
        event: 'block ip',
        params: { address: '203.0.113.9' },
        target: { selector: 'role=db' },
      }),
    );
    assert.equal(real.counts.skipped, 10);
    assert.equal((await fleet.stats()).calls.length, 0, 'no agent was called');
  });

  test('per-host deadline: a host that does not answer in time is timeout / outcome unknown', async () => {
    await fleet.set({ delayMs: 1_500 });
    const job = await waitJob(
      await startJob({ event: 'ping', target: { hosts: [db[0], db[1]] }, deadlineSeconds: 0.3 }),
    );
    assert.equal(job.counts.timeout, 2);
    assert.equal(job.hosts[0].errorCode, 'timeout');
    await fleet.set({ delayMs: 0 });
  });

  test('hosts lost during the call are unreachable', async () => {
    await fleet.set({ delayMs: 5_000 });
    await fleet.reset();
    const id = await startJob({ event: 'ping', target: { selector: 'role=db' }, window: 10 });
    const until = Date.now() + 10_000;
    while ((await fleet.stats()).inFlight < 10 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    await fleet.kill();
    const job = await waitJob(id);
    assert.equal(job.counts.unreachable, 10, JSON.stringify(job.counts));
    assert.match(job.hosts[0].message, /disconnected during "ping"/);
  });
});
