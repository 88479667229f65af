// The firewall through the panel: REST API and the dashboard tab (plain forms, no JavaScript)
// against a real panel and a real in-process sandbox agent whose firewall lives in a network
// namespace this test creates (modules.firewall.netns). Every change is checked in that
// namespace's real iptables; the machine's own firewall is never touched.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { nsRun } from '../helpers/netns.ts';

const HOST = 'fw-panel';
const NS = `ponio-fwp-${randomBytes(3).toString('hex')}`;
let t: TestPanel;
let agentPort: number;

const rules = (): string => nsRun(NS, 'iptables-save', []) + nsRun(NS, 'ip6tables-save', []);
const own = (): string[] =>
  rules()
    .split('\n')
    .filter((l) => l.startsWith('-A PONIO'));

before(async () => {
  requireRoot('the firewall panel test');
  requireProgram('ip', 'iproute2');
  requireProgram('iptables-restore', 'iptables');
  execFileSync('ip', ['netns', 'add', NS]);
  t = await startTestPanel();
  const { agent } = await t.addSandboxHost(HOST, {
    modules: {
      websites: false,
      ftp: false,
      mysql: false,
      firewall: { netns: NS, confirmTimeoutSeconds: 30 },
    },
  });
  agentPort = agent.port;
});

after(async () => {
  await t?.close();
  try {
    execFileSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
  } catch {
    /* not created */
  }
});

describe('firewall through the panel', () => {
  const base = `/api/v1/hosts/${HOST}/firewall`;

  test('REST: add, list, delete, block with expiry, refusals, confirm — audited', async () => {
    const empty = await t.request('GET', base);
    assert.equal(empty.status, 200, empty.text);
    assert.equal(empty.body.data.scope, `netns:${NS}`);
    assert.deepEqual(empty.body.data.rules, []);

    const added = await t.request('POST', `${base}/rules`, {
      body: { action: 'deny', protocol: 'tcp', port: '8080', comment: 'api' },
    });
    assert.equal(added.status, 201, added.text);
    const id = added.body.data.rule.id as string;
    assert.ok(own().some((l) => l.includes('--dport 8080') && l.includes(`ponio:${id}`)));

    const viewer = await t.request('POST', `${base}/rules`, {
      token: t.token('viewer'),
      body: { action: 'allow', protocol: 'tcp' },
    });
    assert.equal(viewer.status, 403);
    assert.equal((await t.request('GET', base, { token: t.token('viewer') })).status, 200);

    const before = rules();
    const hostile = await t.request('POST', `${base}/rules`, {
      body: { action: 'deny', protocol: 'tcp', source: '10.0.0.1 -j ACCEPT' },
    });
    assert.equal(hostile.status, 400);
    assert.equal(hostile.body.error.code, 'invalid-argument');
    const cut = await t.request('POST', `${base}/rules`, {
      body: { action: 'reject', protocol: 'tcp', port: agentPort, source: '127.0.0.1' },
    });
    assert.equal(cut.status, 409, cut.text);
    assert.equal(cut.body.error.code, 'failed-precondition');
    assert.equal(rules().replace(/^#.*$/gm, ''), before.replace(/^#.*$/gm, ''), 'nothing changed');

    const blocked = await t.request('POST', `${base}/blocks`, {
      body: { address: '203.0.113.0/24', expiresInSeconds: 3600, comment: 'scanner' },
    });
    assert.equal(blocked.status, 201, blocked.text);
    assert.ok(blocked.body.data.block.expiresAt > Date.now());
    assert.ok(own().some((l) => l.includes('-s 203.0.113.0/24')));
    const unblocked = await t.request('DELETE', `${base}/blocks/${encodeURIComponent('203.0.113.0/24')}`);
    assert.equal(unblocked.status, 200, unblocked.text);
    assert.ok(!own().some((l) => l.includes('203.0.113.0')));

    const ssh = await t.request('POST', `${base}/rules`, {
      body: { action: 'deny', protocol: 'tcp', port: 22 },
    });
    assert.equal(ssh.status, 201);
    assert.ok(ssh.body.data.pending, 'closing SSH needs a confirmation');
    const listed = await t.request('GET', base);
    assert.ok(listed.body.data.pending);
    const confirmed = await t.request('POST', `${base}/confirm`);
    assert.deepEqual(confirmed.body, { data: { confirmed: true } });

    for (const rid of [id, ssh.body.data.rule.id as string]) {
      const d = await t.request('DELETE', `${base}/rules/${rid}`);
      assert.equal(d.status, 200, d.text);
    }
    assert.equal((await t.request('DELETE', `${base}/rules/${id}`)).status, 404);
    assert.deepEqual(
      own().filter((l) => !l.includes('-j PONIO-BLOCK')),
      [],
    );

    const audit = t.panel.ctx.audit.query({ hostId: HOST, limit: 100 }).rows;
    const actions = audit.map((r) => r.action);
    for (const a of [
      'add firewall rule',
      'block ip',
      'unblock ip',
      'confirm firewall',
      'delete firewall rule',
    ])
      assert.ok(actions.includes(a), `${a} audited`);
    assert.ok(
      audit.some((r) => r.action === 'add firewall rule' && !r.ok),
      'refusals audited too',
    );
  });

  test('dashboard: add and delete a rule, block, the pending banner and its Confirm button', async () => {
    const web = await t.signedIn('fwop', 'operator');
    const tab = `/hosts/${HOST}/firewall`;
    const page = await web.get(tab);
    assert.equal(page.status, 200, page.text.slice(0, 500));
    assert.match(page.text, /Add a rule/);
    assert.match(page.text, /No PonIO rules/);

    const add = await web.submit(tab, `${tab}/rules`, {
      action: 'reject',
      protocol: 'udp',
      port: '5000-5010',
      source: '',
      family: 'both',
      position: '',
      comment: 'from the form',
    });
    assert.equal(add.status, 303);
    const withRule = await web.get(tab);
    assert.match(withRule.text, /Rule added/);
    const rid = /data-rule-id="(r[0-9a-f]{8})"/.exec(withRule.text)?.[1];
    assert.ok(rid, 'rule listed');
    assert.ok(own().some((l) => l.includes('--dport 5000:5010') && l.includes('-p udp')));

    const bad = await web.submit(tab, `${tab}/rules`, { action: 'deny', protocol: 'tcp', port: '99999' });
    assert.equal(bad.status, 303);
    assert.match((await web.get(tab)).text, /not a port number/);

    const noTick = await web.submit(tab, `${tab}/rules/${rid}/delete`, {});
    assert.equal(noTick.status, 303);
    assert.ok(
      own().some((l) => l.includes(`ponio:${rid}`)),
      'not deleted without the confirmation box',
    );
    await web.submit(tab, `${tab}/rules/${rid}/delete`, { confirm: 'yes' });
    assert.ok(!own().some((l) => l.includes(`ponio:${rid}`)));

    await web.submit(tab, `${tab}/blocks`, { address: '198.51.100.23', expiresInMinutes: '10', comment: '' });
    const blockedPage = await web.get(tab);
    assert.match(blockedPage.text, /data-block="198.51.100.23"/);
    await web.submit(tab, `${tab}/blocks/unblock`, { address: '198.51.100.23' });
    assert.ok(!(await web.get(tab)).text.includes('data-block="198.51.100.23"'));

    await web.submit(tab, `${tab}/rules`, { action: 'deny', protocol: 'tcp', port: '22' });
    const pending = await web.get(tab);
    assert.match(pending.text, /id="fw-pending"/);
    assert.match(pending.text, /data-seconds-left="\d+"/);
    assert.match(pending.text, /Confirm — keep this change/);
    await web.submit(tab, `${tab}/confirm`, {});
    const after = await web.get(tab);
    assert.match(after.text, /confirmed; it stays/);
    assert.ok(!after.text.includes('id="fw-pending"'));
    assert.ok(!after.text.includes('id="fw-drift"'));

    nsRun(NS, 'iptables', ['-F', 'PONIO-INPUT']); // changed outside PonIO
    assert.match((await web.get(tab)).text, /id="fw-drift"/);
    await web.submit(tab, `${tab}/reapply`, {});
    const fixed = await web.get(tab);
    assert.ok(!fixed.text.includes('id="fw-drift"'));
    assert.ok(
      own().some((l) => l.includes('--dport 22')),
      'rules back in the kernel',
    );
  });
});
