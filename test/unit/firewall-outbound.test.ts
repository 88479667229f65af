import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FirewallRule } from '../../shared/protocol/events/firewall.ts';
import { ephemeralSamples, isBlocked, outboundVerdict } from '../../agent/modules/firewall/guard.ts';
import { emptyState, type FirewallState } from '../../agent/modules/firewall/state.ts';

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
const panel = '192.0.2.10';
const state = (s: Partial<FirewallState>): FirewallState => ({ ...emptyState(), ...s });

test('outbound link: without the baseline, a rule denying the panel cuts the replies', () => {
  const s = state({ baseline: false, rules: [rule({ source: '192.0.2.0/24' })] });
  assert.equal(isBlocked(outboundVerdict(s, panel, 45000, 0)), true);
  assert.equal(isBlocked(outboundVerdict(s, '198.51.100.1', 45000, 0)), false);
  // A rule on another port range leaves this local port alone.
  const other = state({ baseline: false, rules: [rule({ port: '1-1024' })] });
  assert.equal(isBlocked(outboundVerdict(other, panel, 45000, 0)), false);
});

test('outbound link: with the baseline, replies are ESTABLISHED and only a block cuts them', () => {
  // Baseline ends in REJECT and nothing allows port 45000, yet the reply traffic passes.
  const s = state({ baseline: true, rules: [rule({ source: panel })] });
  assert.equal(isBlocked(outboundVerdict(s, panel, 45000, 0)), false);
  const blocked = state({
    baseline: true,
    blocks: [{ address: '192.0.2.0/24', expiresAt: null, createdAt: 0, comment: '' }],
  });
  assert.equal(isBlocked(outboundVerdict(blocked, panel, 45000, 0)), true);
  const expired = state({
    baseline: true,
    blocks: [{ address: '192.0.2.0/24', expiresAt: 10, createdAt: 0, comment: '' }],
  });
  assert.equal(isBlocked(outboundVerdict(expired, panel, 45000, 20)), false);
});

test('ephemeral samples: the range ends and every rule edge inside it', () => {
  const s = state({ rules: [rule({ port: '40000-50000' }), rule({ port: '22' })] });
  const pts = ephemeralSamples(s, { from: 32768, to: 60999 }).sort((a, b) => a - b);
  assert.deepEqual(pts, [32768, 39999, 40000, 50000, 50001, 60999]);
  // Every port of a rule's range that cuts the panel is found through the samples.
  const cut = state({ baseline: false, rules: [rule({ source: panel, port: '40000-50000' })] });
  assert.ok(
    ephemeralSamples(cut, { from: 32768, to: 60999 }).some((p) =>
      isBlocked(outboundVerdict(cut, panel, p, 0)),
    ),
  );
});
