// A real mutation as a job: `block ip` on three sandbox agents whose firewalls live in network
// namespaces this test creates (real iptables), plus an offline host. One agent refuses for a
// real reason (its firewall holds a change waiting for confirmation); retry, once that is
// confirmed, reaches only that host and the offline one. Every change is checked in each
// namespace's iptables, and the audit holds each host call under the job.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { nsRun } from '../helpers/netns.ts';
import { issueCertificate } from '../../shared/pki/index.ts';

const tag = randomBytes(3).toString('hex');
const HOSTS = ['fwj0', 'fwj1', 'fwj2'];
const NS = HOSTS.map((h) => `ponio-${h}-${tag}`);
const ADDRESS = '203.0.113.9';
let t: TestPanel;

const blocked = (ns: string): boolean => nsRun(ns, 'iptables-save', []).includes(`${ADDRESS}/32`);

async function waitJob(id: number): Promise<any> {
  const until = Date.now() + 60_000;
  for (;;) {
    const r = await t.request<any>('GET', `/api/v1/jobs/${id}`);
    if (r.body.data.state !== 'queued' && r.body.data.state !== 'running') return r.body.data;
    assert.ok(Date.now() < until, 'job did not finish');
    await new Promise((res) => setTimeout(res, 100));
  }
}

before(async () => {
  requireRoot('the jobs firewall test');
  requireProgram('ip', 'iproute2');
  requireProgram('iptables-restore', 'iptables');
  for (const ns of NS) execFileSync('ip', ['netns', 'add', ns]);
  t = await startTestPanel();
  for (const [i, id] of HOSTS.entries()) {
    await t.addSandboxHost(id, {
      modules: {
        websites: false,
        ftp: false,
        mysql: false,
        firewall: { netns: NS[i], confirmTimeoutSeconds: 120 },
      },
    });
    t.panel.ctx.labels.set(id, { role: 'web' });
  }
  // An enrolled web host whose agent is down.
  const issued = await issueCertificate({ ca: t.panel.ctx.pki.ca, role: { kind: 'host', hostId: 'fwjoff' } });
  t.panel.ctx.hosts.repo.insert({ id: 'fwjoff', name: 'fwjoff', address: '127.0.0.1', port: 9 });
  t.panel.ctx.hosts.repo.markEnrolled('fwjoff', issued.serial, issued.notAfter.getTime());
  const row = t.panel.ctx.hosts.repo.get('fwjoff');
  if (row) t.panel.ctx.hosts.connect(row);
  t.panel.ctx.labels.set('fwjoff', { role: 'web' });
});

after(async () => {
  await t?.close();
  for (const ns of NS) {
    try {
      execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    } catch {
      /* not created */
    }
  }
});

test('block ip on every web host: applied where it can be, refusals and offline hosts recorded, retry reaches only them', async () => {
  // fwj1's firewall now holds a change waiting for confirmation: it refuses further changes.
  const base = await t.request<any>('POST', '/api/v1/hosts/fwj1/firewall/baseline', { body: {} });
  assert.equal(base.status, 200, base.text);
  assert.ok(base.body.data.pending, 'the baseline waits for confirmation');

  const operator = t.token('operator');
  const start = await t.request<any>('POST', '/api/v1/jobs', {
    token: operator,
    body: {
      event: 'block ip',
      params: { address: ADDRESS, comment: 'job test' },
      target: { selector: 'role=web' },
      window: 2,
    },
  });
  assert.equal(start.status, 202, start.text);
  const job = await waitJob(start.body.data.id);
  const by = Object.fromEntries(job.hosts.map((h: any) => [h.hostId, h]));
  assert.equal(by.fwj0.state, 'ok');
  assert.equal(by.fwj0.data.block.address, ADDRESS);
  assert.equal(by.fwj2.state, 'ok');
  assert.equal(by.fwj1.state, 'failed');
  assert.equal(by.fwj1.errorCode, 'failed-precondition');
  assert.match(by.fwj1.message, /waiting for confirmation/);
  assert.equal(by.fwjoff.state, 'unreachable');
  assert.equal(job.recap, '4 hosts: ok=2 failed=1 unreachable=1 timeout=0 skipped=0');
  assert.deepEqual(
    NS.map((ns) => blocked(ns)),
    [true, false, true],
    'the real iptables of each namespace',
  );
  // Each host call is in the audit under the job, by the operator who started it.
  const audit = await t.request<any>('GET', `/api/v1/audit?job=${job.id}&action=block%20ip`);
  const calls = audit.body.data.entries;
  assert.equal(calls.length, 4);
  assert.ok(calls.every((e: any) => e.actor === 'token:test-operator' && e.jobId === job.id));
  assert.deepEqual(calls.map((e: any) => `${e.hostId}:${e.ok}`).sort(), [
    'fwj0:true',
    'fwj1:false',
    'fwj2:true',
    'fwjoff:false',
  ]);

  // Confirm fwj1's pending change, retry: only fwj1 and the offline host are called again.
  assert.equal((await t.request('POST', '/api/v1/hosts/fwj1/firewall/confirm', { body: {} })).status, 200);
  const retry = await t.request<any>('POST', `/api/v1/jobs/${job.id}/retry`, { body: {}, token: operator });
  assert.equal(retry.status, 202, retry.text);
  const retried = await waitJob(job.id);
  assert.equal(retried.recap, '4 hosts: ok=3 failed=0 unreachable=1 timeout=0 skipped=0');
  assert.deepEqual(
    NS.map((ns) => blocked(ns)),
    [true, true, true],
  );
  const after2 = (await t.request<any>('GET', `/api/v1/audit?job=${job.id}&action=block%20ip`)).body.data
    .entries;
  assert.deepEqual(
    after2
      .slice(0, 2)
      .map((e: any) => e.hostId)
      .sort(),
    ['fwj1', 'fwjoff'],
    'the retry called only the failed and the unreachable host',
  );
  assert.equal(after2.length, 6);

  // The same job the other way round, with a viewer refused.
  const viewer = await t.request<any>('POST', '/api/v1/jobs', {
    token: t.token('viewer'),
    body: { event: 'unblock ip', params: { address: ADDRESS }, target: { hosts: HOSTS } },
  });
  assert.equal(viewer.status, 403);
  const un = await t.request<any>('POST', '/api/v1/jobs', {
    token: operator,
    body: { event: 'unblock ip', params: { address: ADDRESS }, target: { hosts: HOSTS }, window: '100%' },
  });
  assert.equal((await waitJob(un.body.data.id)).counts.ok, 3);
  assert.deepEqual(
    NS.map((ns) => blocked(ns)),
    [false, false, false],
  );
});
