// The firewall against real iptables, inside two network namespaces this test creates (one plays
// the panel, one the host where the agent runs in sandbox mode with netns "self"). Real TCP
// connections from the panel namespace prove every rule. The machine's own iptables is never
// touched: every iptables command here runs with `ip netns exec`.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { ROOT } from '../helpers/agent-process.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import {
  createNetnsPair,
  nsRun,
  spawnAgentInNs,
  startNsHelper,
  type NetnsPair,
  type NsAgent,
  type NsHelper,
} from '../helpers/netns.ts';
import type { EventName, Reply, ReplyData, RequestIn } from '../../shared/protocol/index.ts';

const HOST_ID = 'fw1';
const AGENT_PORT = 7443;
const CONFIRM_SECONDS = 5;
const PROBE_MS = 800;

let pki: TestPki;
let net: NetnsPair;
let sandbox: string;
let agentArgs: string[];
let agent: NsAgent | null = null;
let panel: NsHelper;
let hostSide: NsHelper;

/** Lines of the host namespace's iptables that are not PonIO's (another tool's rules). */
function foreignRules(): string {
  const keep = (text: string): string =>
    text
      .split('\n')
      .filter((l) => !l.startsWith('#') && !l.includes('PONIO-'))
      .map((l) => l.replace(/\[\d+:\d+\]/g, ''))
      .join('\n');
  return keep(nsRun(net.hostNs, 'iptables-save', [])) + keep(nsRun(net.hostNs, 'ip6tables-save', []));
}

/** The whole firewall of the host namespace (both families), without comments and counters. */
function fullRules(): string {
  const clean = (t: string): string =>
    t
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/g, ''))
      .join('\n');
  return clean(nsRun(net.hostNs, 'iptables-save', [])) + clean(nsRun(net.hostNs, 'ip6tables-save', []));
}

async function call<E extends EventName>(event: E, params: RequestIn<E>): Promise<Reply<ReplyData<E>>> {
  return panel.request<Reply<ReplyData<E>>>('call', { hostId: HOST_ID, event, params });
}

async function ok<E extends EventName>(event: E, params: RequestIn<E>): Promise<ReplyData<E>> {
  const r = await call(event, params);
  assert.ok(r.ok, `${event}: ${JSON.stringify(r)}`);
  return r.data;
}

/**
 * A real TCP connection from the panel namespace: `open`, `refused` or `timeout` (dropped).
 * Expecting a drop waits PROBE_MS; otherwise a slow (loaded) machine gets more time.
 */
function probe(
  port: number,
  opts: { from?: string; v6?: boolean; expectDrop?: boolean } = {},
): Promise<string> {
  return panel.request<string>('probe', {
    host: opts.v6 ? net.hostIp6 : net.hostIp,
    port,
    localAddress: opts.from,
    timeoutMs: opts.expectDrop ? PROBE_MS : 5000,
  });
}

async function startAgent(): Promise<void> {
  agent = await spawnAgentInNs(net.hostNs, agentArgs);
}

async function waitUntil(what: string, fn: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  requireRoot('the firewall system test');
  requireProgram('ip', 'iproute2');
  for (const p of ['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'iptables-save'])
    requireProgram(p, 'iptables');
  pki = await makeTestPki();
  net = createNetnsPair('fw');
  // Another tool's rules (think fail2ban): a chain of its own and rules in INPUT.
  nsRun(net.hostNs, 'iptables', ['-N', 'f2b-sshd']);
  nsRun(net.hostNs, 'iptables', ['-A', 'f2b-sshd', '-s', '192.0.2.66', '-j', 'REJECT']);
  nsRun(net.hostNs, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'f2b-sshd']);
  nsRun(net.hostNs, 'iptables', [
    '-A',
    'INPUT',
    '-s',
    '198.51.100.7',
    '-m',
    'comment',
    '--comment',
    'other tool',
    '-j',
    'DROP',
  ]);
  nsRun(net.hostNs, 'ip6tables', ['-A', 'INPUT', '-s', '2001:db8::7', '-j', 'DROP']);

  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-fw-'));
  const files = await pki.agent(HOST_ID);
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(
    config,
    JSON.stringify({
      modules: {
        // Only the firewall: the other domains' private services are not needed here.
        websites: false,
        ftp: false,
        mysql: false,
        firewall: { netns: 'self', confirmTimeoutSeconds: CONFIRM_SECONDS, sshPorts: [22] },
      },
    }),
  );
  agentArgs = [
    '--config',
    config,
    '--listen',
    `0.0.0.0:${AGENT_PORT}`,
    '--cert',
    files.certFile,
    '--key',
    files.keyFile,
    '--ca',
    files.caFile,
    '--sandbox',
    path.join(sandbox, 'host'),
    '--log-level',
    'info',
  ];
  await startAgent();
  hostSide = await startNsHelper(net.hostNs);
  for (const port of [22, 80, 8080, 9090]) {
    await hostSide.request('listen', { port, host: '0.0.0.0' });
    await hostSide.request('listen', { port, host: '::' });
  }
  panel = await startNsHelper(net.panelNs);
  await panel.request('panel', {
    hostId: HOST_ID,
    address: net.hostIp,
    port: AGENT_PORT,
    tls: { certPem: pki.panel.certPem, keyPem: pki.panel.keyPem, caPem: pki.ca.certPem },
  });
});

after(async () => {
  await panel?.close().catch(() => undefined);
  await hostSide?.close().catch(() => undefined);
  await agent?.stop().catch(() => undefined);
  net?.destroy();
  if (sandbox) rmSync(sandbox, { recursive: true, force: true });
});

describe('firewall in a network namespace (real iptables, real TCP)', () => {
  let foreignBefore = '';

  test('starts empty, with a read-only view of the other tool’s rules', async () => {
    foreignBefore = foreignRules();
    const l = await ok('list firewall rules', {});
    assert.deepEqual(l.rules, []);
    assert.deepEqual(l.blocks, []);
    assert.equal(l.pending, null);
    assert.equal(l.scope, `netns:${net.hostNs}`);
    assert.equal(l.inSync, true, 'a host PonIO never changed is not reported as drifted');
    assert.ok(l.foreign.some((f) => f.family === 'ipv4' && f.line.includes('198.51.100.7')));
    assert.ok(l.foreign.some((f) => f.family === 'ipv6' && f.line.includes('2001:db8::7')));
    assert.equal(await probe(8080), 'open');
  });

  test('deny drops a real connection, reject refuses it, delete opens it again', async () => {
    const deny = await ok('add firewall rule', {
      action: 'deny',
      protocol: 'tcp',
      port: 8080,
      comment: 'test',
    });
    assert.equal(deny.pending, null);
    assert.match(deny.rule.id, /^r[0-9a-f]{8}$/);
    assert.equal(await probe(8080, { expectDrop: true }), 'timeout');
    assert.equal(
      await probe(8080, { v6: true, expectDrop: true }),
      'timeout',
      'a rule without source covers IPv6 too',
    );
    assert.equal(await probe(9090), 'open', 'other ports are untouched');
    const reject = await ok('add firewall rule', { action: 'reject', protocol: 'tcp', port: '9000-9100' });
    assert.equal(await probe(9090), 'refused');
    assert.equal(foreignRules(), foreignBefore, 'the other tool’s rules survive');

    await ok('delete firewall rule', { id: deny.rule.id });
    assert.equal(await probe(8080), 'open');
    await ok('delete firewall rule', { id: reject.rule.id });
    assert.equal(await probe(9090), 'open');
    const gone = await call('delete firewall rule', { id: deny.rule.id });
    assert.equal(!gone.ok && gone.error.code, 'not-found');
    assert.equal(foreignRules(), foreignBefore);
  });

  test('a source-limited IPv6 rule leaves IPv4 alone', async () => {
    const r = await ok('add firewall rule', {
      action: 'deny',
      protocol: 'tcp',
      port: 8080,
      source: `${net.panelIp6}/128`,
    });
    assert.equal(r.rule.family, 'ipv6');
    assert.equal(r.rule.source, net.panelIp6);
    assert.equal(await probe(8080, { v6: true, expectDrop: true }), 'timeout');
    assert.equal(await probe(8080), 'open');
    await ok('delete firewall rule', { id: r.rule.id });
    assert.equal(await probe(8080, { v6: true }), 'open');
  });

  test('block ip blocks only that source, unblock and expiry lift it', async () => {
    const b = await ok('block ip', { address: net.panelIp2, comment: 'abuse' });
    assert.equal(b.block.address, net.panelIp2);
    assert.equal(await probe(8080, { from: net.panelIp2, expectDrop: true }), 'timeout');
    assert.equal(await probe(8080, { from: net.panelIp }), 'open');
    const again = await call('block ip', { address: net.panelIp2 });
    assert.equal(!again.ok && again.error.code, 'already-exists');
    await ok('unblock ip', { address: net.panelIp2 });
    assert.equal(await probe(8080, { from: net.panelIp2 }), 'open');

    const t = await ok('block ip', { address: net.panelIp2, expiresInSeconds: 1 });
    assert.ok(t.block.expiresAt !== null && t.block.expiresAt > Date.now());
    assert.equal(await probe(8080, { from: net.panelIp2, expectDrop: true }), 'timeout');
    await waitUntil(
      'the block expires',
      async () => (await probe(8080, { from: net.panelIp2 })) === 'open',
      8000,
    );
    const l = await ok('list firewall rules', {});
    assert.deepEqual(l.blocks, []);
    assert.equal(foreignRules(), foreignBefore);
  });

  test('a change that would cut the panel is refused and nothing changes', async () => {
    const before = fullRules();
    const attempts: RequestIn<'add firewall rule'>[] = [
      { action: 'deny', protocol: 'tcp', port: AGENT_PORT, source: net.panelIp },
      { action: 'reject', protocol: 'any' },
      { action: 'deny', protocol: 'tcp', port: '7000-8000', source: `${net.panelIp.slice(0, -2)}.0/24` },
    ];
    for (const a of attempts) {
      const r = await call('add firewall rule', a);
      assert.equal(!r.ok && r.error.code, 'failed-precondition', JSON.stringify(a));
      assert.match(!r.ok ? r.error.message : '', /panel’s own connection/);
    }
    const b = await call('block ip', { address: net.panelIp });
    assert.equal(!b.ok && b.error.code, 'failed-precondition');
    assert.equal(fullRules(), before);
    assert.ok((await call('list firewall rules', {})).ok, 'the panel still reaches the agent');
  });

  test('closing SSH is applied in confirm mode and reverts on its own', async () => {
    const r = await ok('add firewall rule', { action: 'deny', protocol: 'tcp', port: 22 });
    assert.ok(r.pending, 'confirmation is due');
    assert.ok(r.pending.dueAt <= Date.now() + CONFIRM_SECONDS * 1000);
    assert.match(r.pending.reason, /port 22/);
    assert.equal(await probe(22, { expectDrop: true }), 'timeout', 'the change is in force while pending');
    const blocked = await call('block ip', { address: '203.0.113.9' });
    assert.equal(!blocked.ok && blocked.error.code, 'failed-precondition', 'one pending change at a time');
    await waitUntil(
      'the change reverts',
      async () => (await probe(22)) === 'open',
      (CONFIRM_SECONDS + 5) * 1000,
    );
    const l = await ok('list firewall rules', {});
    assert.equal(l.pending, null);
    assert.deepEqual(l.rules, []);
    const events = await panel.request<{ topic: string; data: { message?: string } }[]>('events');
    assert.ok(
      events.some((e) => e.topic === 'firewall reverted' && /reverted/.test(e.data.message ?? '')),
      `the panel is told: ${JSON.stringify(events)}`,
    );
    assert.equal(foreignRules(), foreignBefore);
  });

  test('closing the agent port for a source other than the panel is applied in confirm mode and reverts', async () => {
    assert.equal(await probe(AGENT_PORT, { from: net.panelIp2 }), 'open', 'another client reaches the agent');
    const r = await ok('add firewall rule', {
      action: 'reject',
      protocol: 'tcp',
      port: AGENT_PORT,
      source: net.panelIp2,
    });
    assert.ok(r.pending, 'confirmation is due');
    assert.ok(r.pending.dueAt <= Date.now() + CONFIRM_SECONDS * 1000);
    assert.ok(
      r.pending.reason.includes(`port ${AGENT_PORT} for ${net.panelIp2}`),
      `the reason names the agent port: ${r.pending.reason}`,
    );
    assert.equal(await probe(AGENT_PORT, { from: net.panelIp2 }), 'refused', 'in force while pending');
    assert.equal(await probe(AGENT_PORT, { from: net.panelIp }), 'open', 'the panel is never cut');
    assert.ok(
      nsRun(net.hostNs, 'iptables-save', []).includes(
        `-A PONIO-INPUT -s ${net.panelIp2}/32 -p tcp -m tcp --dport ${AGENT_PORT}`,
      ),
    );
    await waitUntil(
      'the change reverts',
      async () => (await probe(AGENT_PORT, { from: net.panelIp2 })) === 'open',
      (CONFIRM_SECONDS + 5) * 1000,
    );
    const l = await ok('list firewall rules', {});
    assert.equal(l.pending, null);
    assert.deepEqual(l.rules, []);
    assert.ok(
      !nsRun(net.hostNs, 'iptables-save', []).includes(`--dport ${AGENT_PORT}`),
      'gone from iptables',
    );
    const events = await panel.request<{ topic: string }[]>('events');
    assert.ok(
      events.some((e) => e.topic === 'firewall pending') &&
        events.some((e) => e.topic === 'firewall reverted'),
      `the panel is told: ${JSON.stringify(events)}`,
    );
    assert.equal(foreignRules(), foreignBefore);
  });

  test('block ip: a narrow block applies at once, the panel’s own address is refused, a wide one needs confirmation', async () => {
    const stateFile = path.join(sandbox, 'host/var/lib/ponio-agent/firewall.json');
    // Narrow (one address, a /24, an IPv6 /64) and not the panel: in force and saved at once.
    const one = await ok('block ip', { address: net.panelIp2 });
    assert.equal(one.pending, null, 'no confirm mode for one address');
    assert.equal(await probe(8080, { from: net.panelIp2, expectDrop: true }), 'timeout');
    assert.equal(
      await probe(22, { from: net.panelIp2, expectDrop: true }),
      'timeout',
      'SSH too, still no confirm',
    );
    for (const address of ['203.0.113.0/24', '2001:db8:1::/64']) {
      const b = await ok('block ip', { address });
      assert.equal(b.pending, null, `no confirm mode for ${address}`);
    }
    const saved = readFileSync(stateFile, 'utf8');
    for (const a of [net.panelIp2, '203.0.113.0/24', '2001:db8:1::/64'])
      assert.ok(saved.includes(a), `${a} saved`);
    assert.equal((await ok('list firewall rules', {})).pending, null);
    for (const address of [net.panelIp2, '203.0.113.0/24', '2001:db8:1::/64'])
      await ok('unblock ip', { address });
    assert.equal(await probe(8080, { from: net.panelIp2 }), 'open');

    // The panel's own address, narrow or wide: refused, with nothing changed.
    const before = fullRules();
    const panelNet = `${net.panelIp.split('.').slice(0, 3).join('.')}.0/24`;
    for (const address of [net.panelIp, panelNet, '10.0.0.0/8']) {
      const r = await call('block ip', { address });
      assert.equal(!r.ok && r.error.code, 'failed-precondition', address);
      assert.match(!r.ok ? r.error.message : '', /panel’s own connection/);
    }
    assert.equal(fullRules(), before, 'iptables unchanged');

    // A wide range without the panel (100.0.0.0/8): confirm mode, in force until it reverts. A
    // client inside it (100.64.0.5 on the panel side) proves it with real connections.
    const veth = (ns: string): string => {
      const m = /^\d+:\s+([^@:\s]+)/.exec(nsRun(ns, 'ip', ['-o', 'link', 'show', 'type', 'veth']));
      if (!m?.[1]) throw new Error(`no veth in ${ns}`);
      return m[1];
    };
    nsRun(net.panelNs, 'ip', ['addr', 'add', '100.64.0.5/32', 'dev', veth(net.panelNs)]);
    nsRun(net.hostNs, 'ip', ['route', 'add', '100.64.0.0/24', 'dev', veth(net.hostNs)]);
    assert.equal(await probe(8080, { from: '100.64.0.5' }), 'open');
    const wide = await ok('block ip', { address: '100.0.0.0/8' });
    assert.ok(wide.pending, 'a /8 goes through confirm mode');
    assert.match(wide.pending.reason, /closes TCP port 22 for 100\./);
    assert.equal(
      await probe(22, { from: '100.64.0.5', expectDrop: true }),
      'timeout',
      'in force while pending',
    );
    assert.equal(await probe(22, { from: net.panelIp2 }), 'open', 'only that range');
    assert.ok(!readFileSync(stateFile, 'utf8').includes('100.0.0.0/8'), 'a pending block is not saved');
    await waitUntil(
      'the wide block reverts',
      async () => (await probe(22, { from: '100.64.0.5' })) === 'open',
      (CONFIRM_SECONDS + 5) * 1000,
    );
    const l = await ok('list firewall rules', {});
    assert.equal(l.pending, null);
    assert.deepEqual(l.blocks, []);
    await panel.request('events'); // drop this test's notifications
    assert.equal(foreignRules(), foreignBefore);
  });

  test('a confirmed risky change stays', async () => {
    const r = await ok('add firewall rule', {
      action: 'deny',
      protocol: 'tcp',
      port: 22,
      source: '192.0.2.0/24',
    });
    assert.ok(r.pending);
    assert.deepEqual(await ok('confirm firewall', {}), { confirmed: true });
    await new Promise((res) => setTimeout(res, (CONFIRM_SECONDS + 1) * 1000));
    const l = await ok('list firewall rules', {});
    assert.equal(l.pending, null);
    assert.deepEqual(
      l.rules.map((x) => x.id),
      [r.rule.id],
    );
    assert.deepEqual(await ok('confirm firewall', {}), { confirmed: false });
    const d = await ok('delete firewall rule', { id: r.rule.id });
    assert.equal(d.pending, null, 'opening a port needs no confirmation');
  });

  test('the baseline: one action, confirm mode, rejects the rest but keeps the panel', async () => {
    const b = await ok('apply firewall baseline', {});
    assert.ok(b.pending);
    assert.ok(b.rules.some((r) => r.port === String(AGENT_PORT) && r.source === net.panelIp));
    assert.equal(await probe(8080), 'refused', 'everything else is rejected');
    assert.equal(await probe(80), 'open');
    assert.equal(await probe(22), 'open');
    assert.deepEqual(await ok('confirm firewall', {}), { confirmed: true });
    const l = await ok('list firewall rules', {});
    assert.equal(l.baseline, true);
    assert.equal(await probe(8080), 'refused');
    // With the baseline on, deleting the SSH rule closes SSH: confirm mode.
    const ssh = l.rules.find((r) => r.port === '22');
    assert.ok(ssh);
    const d = await ok('delete firewall rule', { id: ssh.id });
    assert.ok(d.pending);
    await ok('confirm firewall', {});
    assert.equal(await probe(22), 'refused');
    await ok('remove firewall baseline', {});
    for (const r of (await ok('list firewall rules', {})).rules)
      await ok('delete firewall rule', { id: r.id });
    assert.equal(await probe(8080), 'open');
    assert.equal(await probe(22), 'open');
    assert.equal(foreignRules(), foreignBefore);
  });

  test('hostile fields are refused with the rule set unchanged', async () => {
    await ok('add firewall rule', { action: 'allow', protocol: 'udp', port: 53, comment: 'dns' });
    const before = fullRules();
    const stateFile = path.join(sandbox, 'host/var/lib/ponio-agent/firewall.json');
    const stateBefore = readFileSync(stateFile, 'utf8');
    const bad: [EventName, Record<string, unknown>][] = [
      ['add firewall rule', { action: 'deny', protocol: 'tcp', source: '10.0.0.0/33' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', source: '10.0.0.1/8' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', source: '999.1.1.1' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', source: '10.0.0.1 -j ACCEPT' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', source: '1.2.3.4\n-A INPUT -j ACCEPT' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', source: '１.2.3.4' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', source: 'fe80::1%eth0' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', port: 0 }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', port: 65536 }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', port: '22 -j ACCEPT' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', port: '100-10' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', port: '1:2:3' }],
      ['add firewall rule', { action: 'deny', protocol: 'icmp', port: 80 }],
      ['add firewall rule', { action: 'ACCEPT', protocol: 'tcp' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp -j ACCEPT' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', comment: 'x" -j ACCEPT "' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', comment: 'line\n-A INPUT -j ACCEPT' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', comment: 'x'.repeat(500) }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', family: 'ipv4', source: '2001:db8::/32' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', jump: 'ACCEPT' }],
      ['add firewall rule', { action: 'deny', protocol: 'tcp', position: 99 }],
      ['delete firewall rule', { id: '../../etc/passwd' }],
      ['delete firewall rule', { id: 'r1; DROP TABLE rules' }],
      ['block ip', { address: '0.0.0.0/0 -j ACCEPT' }],
      ['block ip', { address: "1.2.3.4' OR 1=1 --" }],
      ['block ip', { address: '1.2.3.4', expiresInSeconds: -5 }],
      ['block ip', { address: 'x'.repeat(10_000) }],
      ['unblock ip', { address: '1.2.3.4\u0000' }],
    ];
    for (const [event, params] of bad) {
      const r = await panel.request<Reply<unknown>>('call', { hostId: HOST_ID, event, params });
      assert.equal(r.ok, false, `${event} ${JSON.stringify(params)} was accepted`);
      assert.equal(
        !r.ok && r.error.code,
        'invalid-argument',
        `${event} ${JSON.stringify(params)}: ${JSON.stringify(r)}`,
      );
      assert.ok(!r.ok && r.error.message.length > 0 && !r.error.message.includes('\n'));
    }
    assert.equal(fullRules(), before, 'iptables unchanged');
    assert.equal(readFileSync(stateFile, 'utf8'), stateBefore, 'state file unchanged');
  });

  test('an agent killed while a change is pending comes back with the last confirmed rules', async () => {
    const r = await ok('add firewall rule', { action: 'deny', protocol: 'tcp', port: 22 });
    assert.ok(r.pending);
    assert.equal(await probe(22, { expectDrop: true }), 'timeout');
    await agent?.kill();
    agent = null;
    await startAgent();
    assert.equal(await probe(22), 'open', 'the unconfirmed change did not survive the crash');
    await waitUntil('the panel reconnects', async () => (await call('list firewall rules', {})).ok, 15_000);
    const l = await ok('list firewall rules', {});
    assert.equal(l.pending, null);
    assert.ok(!l.rules.some((x) => x.id === r.rule.id));
    assert.equal(foreignRules(), foreignBefore);
  });

  test('a restarted agent restores the rule set', async () => {
    const r = await ok('add firewall rule', { action: 'deny', protocol: 'tcp', port: 8080 });
    const b = await ok('block ip', { address: net.panelIp2 });
    assert.ok(b.block);
    assert.equal(await probe(8080, { expectDrop: true }), 'timeout');
    await agent?.stop();
    agent = null;
    // As after a reboot: PonIO's chains are gone (the other tool's rules stay).
    for (const cmd of ['iptables', 'ip6tables']) {
      nsRun(net.hostNs, cmd, ['-D', 'INPUT', '-j', 'PONIO-INPUT']);
      for (const flag of ['-F', '-X'])
        for (const c of ['PONIO-INPUT', 'PONIO-BLOCK']) nsRun(net.hostNs, cmd, [flag, c]);
    }
    assert.equal(await probe(8080), 'open');
    await startAgent();
    assert.equal(await probe(8080, { expectDrop: true }), 'timeout', 'restored before the agent serves');
    assert.equal(await probe(9090, { from: net.panelIp2, expectDrop: true }), 'timeout');
    assert.equal(await probe(9090, { from: net.panelIp }), 'open');
    await waitUntil('the panel reconnects', async () => (await call('list firewall rules', {})).ok, 15_000);
    const l = await ok('list firewall rules', {});
    assert.ok(l.rules.some((x) => x.id === r.rule.id));
    assert.equal(foreignRules(), foreignBefore);
  });

  test('chains flushed outside PonIO are reported and re-applied on request', async () => {
    assert.equal((await ok('list firewall rules', {})).inSync, true);
    assert.equal(await probe(8080, { expectDrop: true }), 'timeout');
    nsRun(net.hostNs, 'iptables', ['-F', 'PONIO-INPUT']); // an admin's `iptables -F`, say
    assert.equal(await probe(8080), 'open');
    assert.equal((await ok('list firewall rules', {})).inSync, false);
    assert.equal((await ok('reapply firewall', {})).pending, null);
    assert.equal((await ok('list firewall rules', {})).inSync, true);
    assert.equal(await probe(8080, { expectDrop: true }), 'timeout');
    assert.equal(foreignRules(), foreignBefore);
  });

  test('the systemd restore unit’s own commands rebuild the same chains', () => {
    const stateDir = path.join(sandbox, 'host/var/lib/ponio-agent');
    const unit = readFileSync(path.join(ROOT, 'deploy/systemd/ponio-firewall-restore.service'), 'utf8');
    const commands = unit
      .split('\n')
      .filter((l) => /^ExecStart(Pre)?=/.test(l))
      .map((l) =>
        l
          .replace(/^ExecStart(Pre)?=-?/, '')
          .replaceAll('/var/lib/ponio-agent', stateDir)
          .split(' '),
      );
    assert.equal(commands.length, 4);
    const live = nsRun(net.hostNs, 'iptables-save', [])
      .split('\n')
      .filter((l) => l.startsWith('-A PONIO'));
    assert.ok(live.length >= 3, 'there are rules to restore');
    // As after a reboot: PonIO's chains are empty and not jumped to.
    for (const cmd of ['iptables', 'ip6tables']) {
      nsRun(net.hostNs, cmd, ['-D', 'INPUT', '-j', 'PONIO-INPUT']);
      for (const c of ['PONIO-INPUT', 'PONIO-BLOCK']) nsRun(net.hostNs, cmd, ['-F', c]);
    }
    for (let round = 0; round < 2; round++) {
      for (const [program, ...args] of commands) {
        if (program === undefined || !program.startsWith('/usr/sbin/'))
          throw new Error(`odd command ${program}`);
        try {
          nsRun(net.hostNs, program, args);
        } catch (e) {
          // ExecStartPre's "-": deleting a jump that is not there may fail.
          if (!args.includes('-D')) throw e;
        }
      }
    }
    const save = nsRun(net.hostNs, 'iptables-save', []).split('\n');
    assert.deepEqual(
      save.filter((l) => l.startsWith('-A PONIO')),
      live,
    );
    assert.equal(
      save.filter((l) => l === '-A INPUT -j PONIO-INPUT').length,
      1,
      'one jump, even when run twice',
    );
    assert.equal(foreignRules(), foreignBefore);
  });
});
