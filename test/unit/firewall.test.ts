import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { validateCidr, validateIp, validatePortRange } from '../../shared/validate/network.ts';
import { rpcEvents } from '../../shared/protocol/index.ts';
import type { FirewallRule } from '../../shared/protocol/events/firewall.ts';
import { renderRestore, parseSave, countRendered } from '../../agent/modules/firewall/render.ts';
import { lostAccess, verdictFor } from '../../agent/modules/firewall/guard.ts';
import { emptyState, FirewallStore, type FirewallState } from '../../agent/modules/firewall/state.ts';
import { resolveFirewallSettings } from '../../agent/modules/firewall/settings.ts';
import { Firewall } from '../../agent/modules/firewall/firewall.ts';
import { IptablesAdapter } from '../../agent/modules/firewall/iptables.ts';
import type { Family } from '../../agent/modules/firewall/render.ts';
import type { Exec } from '../../agent/os/exec.ts';
import type { RpcError } from '../../shared/protocol/index.ts';
import { pino } from 'pino';
import { tempDir } from '../helpers/tmp.ts';

let n = 0;
const rule = (r: Partial<FirewallRule>): FirewallRule => ({
  id: `r${(n++).toString(16).padStart(8, '0')}`,
  action: 'deny',
  protocol: 'tcp',
  family: 'both',
  port: null,
  source: null,
  comment: '',
  createdAt: 0,
  ...r,
});
const state = (s: Partial<FirewallState>): FirewallState => ({ ...emptyState(), ...s });
const NOW = 1_000_000;

describe('validators', () => {
  test('port ranges', () => {
    assert.deepEqual(validatePortRange(80), { ok: true, value: { from: 80, to: 80, text: '80' } });
    assert.deepEqual(validatePortRange('8000:8100'), {
      ok: true,
      value: { from: 8000, to: 8100, text: '8000-8100' },
    });
    for (const bad of [0, 65536, -1, 1.5, '', '80 ', '100-10', '1-2-3', '22;ls', '٨٠', '0x50', '80\n'])
      assert.equal(validatePortRange(bad).ok, false, JSON.stringify(bad));
  });

  test('addresses: zone indexes refused, IPv6 canonical', () => {
    assert.equal(validateIp('fe80::1%eth0').ok, false);
    const v6 = validateIp('2001:DB8:0:0::1');
    assert.ok(v6.ok);
    assert.equal(v6.value.address, '2001:db8::1');
    const c = validateCidr('2001:db8::/32');
    assert.ok(c.ok);
    assert.equal(c.value.text, '2001:db8::/32');
    assert.equal(validateCidr('10.0.0.1/8').ok, false, 'host bits set');
  });

  test('the request schemas refuse hostile fields', () => {
    const add = rpcEvents['add firewall rule'].request;
    const bad: unknown[] = [
      { action: 'deny', protocol: 'tcp', source: '1.2.3.4 -j ACCEPT' },
      { action: 'deny', protocol: 'tcp', comment: 'a\nb' },
      { action: 'deny', protocol: 'tcp', comment: 'say "hi"' },
      { action: 'deny', protocol: 'tcp', port: '22,23' },
      { action: 'deny', protocol: 'tcp', extra: 1 },
      { action: 'DROP', protocol: 'tcp' },
    ];
    for (const b of bad) assert.equal(add.safeParse(b).success, false, JSON.stringify(b));
    const good = add.safeParse({ action: 'allow', protocol: 'tcp', port: '443', source: 'any' });
    assert.ok(good.success);
    assert.equal(good.data.source, null);
    assert.equal(good.data.port?.text, '443');
    assert.equal(rpcEvents['delete firewall rule'].request.safeParse({ id: '../x' }).success, false);
  });
});

describe('rendering iptables-restore input', () => {
  test('only PonIO’s chains, per family, expired blocks left out', () => {
    const s = state({
      rules: [
        rule({ action: 'allow', port: '443' }),
        rule({ action: 'reject', protocol: 'udp', port: '1000-2000', source: '10.0.0.0/8', family: 'ipv4' }),
        rule({ action: 'deny', protocol: 'icmp' }),
        rule({ source: '2001:db8::/32', family: 'ipv6' }),
      ],
      blocks: [
        { address: '192.0.2.1', expiresAt: null, comment: '', createdAt: 0 },
        { address: '192.0.2.2', expiresAt: NOW - 1, comment: '', createdAt: 0 },
        { address: '2001:db8::1', expiresAt: NOW + 1000, comment: '', createdAt: 0 },
      ],
    });
    const v4 = renderRestore(s, 'ipv4', { insertJump: true, now: NOW });
    assert.match(
      v4,
      /^\*filter\n:PONIO-INPUT - \[0:0\]\n:PONIO-BLOCK - \[0:0\]\n-I INPUT 1 -j PONIO-INPUT\n/,
    );
    assert.match(v4, /-A PONIO-BLOCK -s 192\.0\.2\.1 .* -j DROP/);
    assert.doesNotMatch(v4, /192\.0\.2\.2/, 'expired block');
    assert.doesNotMatch(v4, /2001:db8/);
    assert.match(v4, /-A PONIO-INPUT -s 10\.0\.0\.0\/8 -p udp --dport 1000:2000 .*-j REJECT/);
    assert.match(v4, /-p icmp .*-j DROP/);
    assert.ok(v4.endsWith('COMMIT\n'));
    for (const line of v4.split('\n').filter((l) => l.startsWith('-') || l.startsWith(':')))
      assert.match(line, /PONIO-(INPUT|BLOCK)/, `only PonIO's chains: ${line}`);
    const v6 = renderRestore(s, 'ipv6', { insertJump: false, now: NOW });
    assert.doesNotMatch(v6, /-I INPUT/);
    assert.match(v6, /-p ipv6-icmp/);
    assert.match(v6, /-A PONIO-BLOCK -s 2001:db8::1 /);
    assert.doesNotMatch(v6, /10\.0\.0\.0/);
    assert.equal(countRendered(v4), 1 + 1 + 3);
  });

  test('baseline wraps the rules: loopback, established, ICMP first; reject last', () => {
    const v4 = renderRestore(
      state({ baseline: true, rules: [rule({ action: 'allow', port: '22' })] }),
      'ipv4',
      {
        insertJump: false,
        now: NOW,
      },
    );
    const lines = v4.split('\n').filter((l) => l.startsWith('-A PONIO-INPUT'));
    assert.match(lines[1] ?? '', /-i lo /);
    assert.match(lines[2] ?? '', /ESTABLISHED/);
    assert.match(lines[3] ?? '', /-p icmp/);
    assert.match(lines[4] ?? '', /--dport 22 /);
    assert.match(lines[5] ?? '', /-j REJECT$/);
  });

  test('parsing iptables-save separates PonIO’s rules from the rest', () => {
    const p = parseSave(
      [
        '*nat',
        '-A POSTROUTING -j MASQUERADE',
        'COMMIT',
        '*filter',
        ':INPUT ACCEPT [0:0]',
        '-A INPUT -j PONIO-INPUT',
        '-A INPUT -j f2b-sshd',
        '-A PONIO-INPUT -j PONIO-BLOCK',
        'COMMIT',
      ].join('\n'),
    );
    assert.equal(p.hasJump, true);
    assert.deepEqual(p.own, ['-A PONIO-INPUT -j PONIO-BLOCK']);
    assert.deepEqual(p.foreign, [
      { table: 'nat', line: '-A POSTROUTING -j MASQUERADE' },
      { table: 'filter', line: '-A INPUT -j f2b-sshd' },
    ]);
  });
});

describe('lock-out guard', () => {
  test('verdicts follow blocks, then rules in order, then the baseline', () => {
    const s = state({
      rules: [
        rule({ action: 'allow', port: '22', source: '192.0.2.0/24' }),
        rule({ action: 'reject', port: '22' }),
      ],
      blocks: [{ address: '192.0.2.9', expiresAt: null, comment: '', createdAt: 0 }],
    });
    assert.equal(verdictFor(s, '192.0.2.1', 22, NOW), 'accept');
    assert.equal(verdictFor(s, '192.0.2.9', 22, NOW), 'drop');
    assert.equal(verdictFor(s, '198.51.100.1', 22, NOW), 'reject');
    assert.equal(verdictFor(s, '198.51.100.1', 80, NOW), 'pass');
    assert.equal(verdictFor(state({ baseline: true }), '198.51.100.1', 80, NOW), 'reject');
    assert.equal(verdictFor(s, '2001:db8::1', 22, NOW), 'reject', 'family both');
  });

  test('closing SSH or the agent port for anyone is risky; other changes are not', () => {
    const empty = emptyState();
    assert.match(lostAccess(empty, state({ rules: [rule({ port: '22' })] }), [22], NOW) ?? '', /port 22/);
    assert.ok(
      lostAccess(empty, state({ rules: [rule({ port: '20-30', source: '203.0.113.0/24' })] }), [22], NOW),
    );
    assert.equal(lostAccess(empty, state({ rules: [rule({ port: '80' })] }), [22, 7443], NOW), null);
    assert.equal(
      lostAccess(empty, state({ rules: [rule({ protocol: 'udp', port: '22' })] }), [22], NOW),
      null,
    );
    const ssh = rule({ action: 'allow', port: '22' });
    const withBaseline = state({ baseline: true, rules: [ssh] });
    assert.ok(lostAccess(withBaseline, state({ baseline: true }), [22], NOW), 'deleting the SSH allow');
    assert.equal(lostAccess(withBaseline, emptyState(), [22], NOW), null, 'removing the baseline opens');
  });

  test('a deny or reject on the agent port for a source other than the panel is risky', () => {
    const empty = emptyState();
    for (const action of ['deny', 'reject'] as const) {
      const after = state({ rules: [rule({ action, port: '7443', source: '198.51.100.0/24' })] });
      assert.match(
        lostAccess(empty, after, [22, 7443], NOW) ?? '',
        /port 7443 for 198\.51\.100\./,
        `${action} on the agent port`,
      );
      assert.equal(lostAccess(empty, after, [22], NOW), null, 'only because 7443 is a protected port');
    }
    // The panel (192.0.2.10) keeps its own allow rule: another source losing the port is still risky.
    const panelOnly = state({
      rules: [rule({ action: 'allow', port: '7443', source: '192.0.2.10' }), rule({ port: '7443' })],
    });
    assert.match(lostAccess(empty, panelOnly, [22, 7443], NOW) ?? '', /port 7443/);
    assert.equal(verdictFor(panelOnly, '192.0.2.10', 7443, NOW), 'accept');
  });

  test('exact over every source, even between nested ranges', () => {
    // 10.0.0.0/9 and 10.255.0.0/16 are blocked; denying 10.0.0.0/8 still closes 10.128.0.0–10.254.255.255.
    const blocks = [
      { address: '10.0.0.0/9', expiresAt: null, comment: '', createdAt: 0 },
      { address: '10.255.0.0/16', expiresAt: null, comment: '', createdAt: 0 },
    ];
    const before = state({ blocks });
    const after = state({ blocks, rules: [rule({ port: '22', source: '10.0.0.0/8' })] });
    assert.match(lostAccess(before, after, [22], NOW) ?? '', /10\.128\.0\.0|10\.254\.255\.255/);
    const covered = state({
      blocks: [...blocks, { address: '10.128.0.0/9', expiresAt: null, comment: '', createdAt: 0 }],
    });
    assert.equal(
      lostAccess(covered, { ...covered, rules: [rule({ port: '22', source: '10.0.0.0/8' })] }, [22], NOW),
      null,
      'nothing left to close',
    );
  });
});

describe('state file and settings', () => {
  test('a tampered state file is refused, never rendered', async () => {
    const dir = tempDir('ponio-fwunit-');
    const store = new FirewallStore(dir);
    assert.equal(await store.load(), null);
    const s = state({ rules: [rule({ port: '22' })] });
    await store.save(s, { ipv4: 'x', ipv6: 'y' });
    assert.deepEqual(await store.load(), s);
    const evil = {
      format: 1,
      baseline: false,
      blocks: [],
      rules: [{ ...rule({}), source: '1.2.3.4 -j ACCEPT' }],
    };
    writeFileSync(store.file, JSON.stringify(evil));
    await assert.rejects(store.load(), /firewall\.json is invalid/);
  });

  test('sandbox mode never defaults to the machine’s own firewall', () => {
    const sb = resolveFirewallSettings(undefined, 'sandbox');
    assert.equal(sb.ok, false);
    assert.match(!sb.ok ? sb.reason : '', /network namespace of its own/);
    const sys = resolveFirewallSettings({}, 'system');
    assert.ok(sys.ok);
    assert.equal(sys.value.scope, 'host');
    assert.equal(sys.value.confirmTimeoutSeconds, 30);
    const missing = resolveFirewallSettings({ netns: 'ponio-no-such-ns' }, 'sandbox');
    assert.match(!missing.ok ? missing.reason : '', /does not exist/);
    assert.equal(resolveFirewallSettings({ netns: '../x' }, 'sandbox').ok, false);
    assert.equal(resolveFirewallSettings({ bogus: 1 }, 'system').ok, false);
  });
});

describe('apply orchestration (fake iptables: failures the kernel rarely produces)', () => {
  const SAVE_V4 = [
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':PONIO-INPUT - [0:0]',
    ':PONIO-BLOCK - [0:0]',
    '-A INPUT -j PONIO-INPUT',
    '-A INPUT -s 198.51.100.7/32 -j DROP',
    '-A PONIO-INPUT -j PONIO-BLOCK',
    'COMMIT',
    '',
  ].join('\n');

  function setup(fail: { test?: Family; restore?: Family }) {
    const calls: { bin: string; args: readonly string[]; input: string | undefined }[] = [];
    // What each family's PonIO chains hold (the jump from INPUT is already there).
    const chains: Record<Family, string[]> = {
      ipv4: ['-A PONIO-INPUT -j PONIO-BLOCK'],
      ipv6: ['-A PONIO-INPUT -j PONIO-BLOCK'],
    };
    const exec: Exec = (bin, args, opts = {}) => {
      calls.push({ bin, args, input: opts.input });
      const family: Family = bin.startsWith('ip6') ? 'ipv6' : 'ipv4';
      if (bin.endsWith('-save')) {
        const own = chains[family].join('\n');
        return Promise.resolve({
          code: 0,
          stdout: SAVE_V4.replace('-A PONIO-INPUT -j PONIO-BLOCK', own),
          stderr: '',
        });
      }
      const testing = args.includes('--test');
      if ((testing && fail.test === family) || (!testing && fail.restore === family))
        return Promise.resolve({ code: 1, stdout: '', stderr: `${bin}: line 7 failed` });
      if (!testing) chains[family] = (opts.input ?? '').split('\n').filter((l) => l.startsWith('-A PONIO'));
      return Promise.resolve({ code: 0, stdout: '', stderr: '' });
    };
    const dir = tempDir('ponio-fwunit-');
    const store = new FirewallStore(dir);
    const fw = new Firewall({
      iptables: new IptablesAdapter(exec, undefined),
      store,
      settings: { confirmTimeoutSeconds: 30, sshPorts: [22], execNetns: undefined, scope: 'host' },
      logger: pino({ level: 'silent' }),
      broadcast: () => undefined,
      agentPort: () => 7443,
    });
    return { calls, fw, store };
  }
  const peer = { address: '192.0.2.10', localPort: 7443 };
  const addRule = (s: FirewallState): FirewallState => ({ ...s, rules: [rule({ port: '8080' })] });

  test('closing the agent port for a non-panel source is applied in confirm mode, and reverts', async () => {
    for (const action of ['deny', 'reject'] as const) {
      const { calls, fw, store } = setup({});
      const closeAgentPort = (s: FirewallState): FirewallState => ({
        ...s,
        rules: [rule({ action, port: '7443', source: '198.51.100.0/24' })],
      });
      const r = await fw.change(peer, closeAgentPort);
      assert.ok(r.pending, `${action}: confirmation is due`);
      assert.match(r.pending.reason, /confirm mode because it closes TCP port 7443 for 198\.51\.100\./);
      const applied = calls.filter((c) => c.bin === 'iptables-restore' && !c.args.includes('--test'));
      assert.match(
        applied.at(-1)?.input ?? '',
        /-s 198\.51\.100\.0\/24 -p tcp .*--dport 7443 .*-j (DROP|REJECT)/,
      );
      assert.equal(await store.load(), null, 'a pending change is not saved');
      // Stopping the agent before the confirmation reverts it (the 30 s timer never fires here).
      await fw.stop();
      assert.equal(fw.pendingView(), null);
      assert.deepEqual(fw.current().rules, []);
      const last = calls.filter((c) => c.bin === 'iptables-restore' && !c.args.includes('--test')).at(-1);
      assert.doesNotMatch(last?.input ?? '', /7443/, 'the previous rules are back in iptables');
    }
  });

  test('the agent port from the panel itself is refused, not put in confirm mode', async () => {
    const { fw } = setup({});
    await assert.rejects(
      fw.change(peer, (s) => ({ ...s, rules: [rule({ action: 'reject', port: '7443' })] })),
      (e: RpcError) => e.code === 'failed-precondition' && /panel’s own connection/.test(e.message),
    );
    assert.equal(fw.pendingView(), null);
  });

  test('--test refuses: nothing is applied, nothing saved, the checker output is in the reply', async () => {
    const { calls, fw, store } = setup({ test: 'ipv6' });
    await assert.rejects(fw.change(peer, addRule), (e: RpcError) => {
      assert.equal(e.code, 'failed-precondition');
      assert.match(e.message, /--test refused the ipv6 rule set; nothing was changed: .*line 7 failed/);
      return true;
    });
    assert.ok(!calls.some((c) => c.bin.endsWith('-restore') && !c.args.includes('--test')));
    assert.equal(await store.load(), null);
    assert.deepEqual(fw.current().rules, []);
  });

  test('IPv6 fails after IPv4 applied: IPv4 is put back exactly as it was', async () => {
    const { calls, fw, store } = setup({ restore: 'ipv6' });
    await assert.rejects(fw.change(peer, addRule), /ip6tables-restore refused the rule set: .*line 7 failed/);
    const v4Applies = calls.filter((c) => c.bin === 'iptables-restore' && !c.args.includes('--test'));
    assert.equal(v4Applies.length, 2, 'the change, then the rollback');
    assert.match(v4Applies[0]?.input ?? '', /--dport 8080/);
    assert.equal(
      v4Applies[1]?.input,
      '*filter\n:PONIO-INPUT - [0:0]\n:PONIO-BLOCK - [0:0]\n-A PONIO-INPUT -j PONIO-BLOCK\nCOMMIT\n',
    );
    assert.equal(await store.load(), null);
    assert.deepEqual(fw.current().rules, []);
  });
  test('a change reports its steps to the caller, in order', async () => {
    const { fw } = setup({});
    const steps: string[] = [];
    await fw.change({ ...peer, progress: (m) => steps.push(m) }, addRule);
    assert.deepEqual(steps, [
      'Checking that the change keeps the panel connected',
      'Testing the rule set (iptables-restore --test)',
      'Applying the ipv4 rules',
      'Applying the ipv6 rules',
      'Saving the rule set for the next boot',
    ]);
  });
});
