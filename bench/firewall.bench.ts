// Firewall: what one change costs as the block list grows, applied by the real module to a real
// iptables in a throwaway network namespace (never the machine's own), against the naive way
// (one `iptables -A` call per rule). Also the lock-out guard's own time at the size limits.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { exec } from '../agent/os/exec.ts';
import { Firewall } from '../agent/modules/firewall/firewall.ts';
import { IptablesAdapter } from '../agent/modules/firewall/iptables.ts';
import { lostAccess } from '../agent/modules/firewall/guard.ts';
import { FirewallStore, type FirewallState } from '../agent/modules/firewall/state.ts';
import { count, latencyStats, median, type Bench, type BenchResult } from './lib.ts';

const block = (i: number): FirewallState['blocks'][number] => ({
  address: `10.${(i >> 8) & 255}.${i & 255}.0/24`,
  expiresAt: null,
  comment: '',
  createdAt: 0,
});

export const bench: Bench = {
  name: 'firewall',
  async run(): Promise<BenchResult[]> {
    const out: BenchResult[] = [];
    const ns = `ponio-bench-${randomBytes(3).toString('hex')}`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-fwbench-'));
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const fw = new Firewall({
        iptables: new IptablesAdapter(exec, ns),
        store: new FirewallStore(dir),
        settings: { confirmTimeoutSeconds: 30, sshPorts: [22], execNetns: ns, scope: `netns:${ns}` },
        logger: pino({ level: 'silent' }),
        broadcast: () => undefined,
        agentPort: () => 7443,
      });
      const peer = { address: '192.0.2.10', localPort: 7443 };
      const sizes = [0, count(1000, 50), count(5000, 200)];
      let next = 0;
      for (const size of sizes) {
        // Grow the block list to `size` in one change, then time single-block changes on top.
        await fw.change(
          peer,
          (s) => {
            while (s.blocks.length < size) s.blocks.push(block(next++));
            return s;
          },
          { noConfirm: true },
        );
        const ns_: bigint[] = [];
        for (let i = 0; i < count(10, 3); i++) {
          const t0 = process.hrtime.bigint();
          await fw.change(peer, (s) => ({ ...s, blocks: [...s.blocks, block(next++)] }), { noConfirm: true });
          ns_.push(process.hrtime.bigint() - t0);
        }
        out.push({
          bench: 'firewall',
          case: `block ip with ${size} blocks (one restore per family)`,
          ...latencyStats(ns_),
        });
      }

      // The naive way: one iptables call per rule, in a fresh chain.
      const naive = count(500, 30);
      execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-N', 'NAIVE']);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < naive; i++)
        execFileSync('ip', [
          'netns',
          'exec',
          ns,
          'iptables',
          '-A',
          'NAIVE',
          '-s',
          block(i).address,
          '-j',
          'DROP',
        ]);
      const naiveMs = Number(process.hrtime.bigint() - t0) / 1e6;
      out.push({
        bench: 'firewall',
        case: `${naive} rules by one iptables call each`,
        total_ms: Math.round(naiveMs),
      });

      // The guard at the limits: 5000 blocks, 500 rules, two protected ports.
      const rules = Array.from({ length: 500 }, (_, i) => ({
        id: `r${i.toString(16).padStart(8, '0')}`,
        action: 'allow' as const,
        protocol: 'tcp' as const,
        family: 'both' as const,
        port: String(1000 + i),
        source: `172.16.${i & 255}.0/24`,
        comment: '',
        createdAt: 0,
      }));
      const big: FirewallState = {
        baseline: false,
        rules,
        blocks: Array.from({ length: 5000 }, (_, i) => block(i)),
      };
      const closing: FirewallState = {
        ...big,
        rules: [...rules, { ...rules[0]!, id: 'rffffffff', action: 'deny', port: '22', source: null }],
      };
      const times: number[] = [];
      for (let i = 0; i < count(5, 2); i++) {
        const t = process.hrtime.bigint();
        lostAccess(big, closing, [22, 7443], 0);
        lostAccess(big, big, [22, 7443], 0);
        times.push(Number(process.hrtime.bigint() - t) / 1e6 / 2);
      }
      out.push({
        bench: 'firewall',
        case: 'lock-out guard, 5000 blocks + 500 rules',
        median_ms: Math.round(median(times)),
      });
      await fw.stop();
    } finally {
      execFileSync('ip', ['netns', 'delete', ns]);
      rmSync(dir, { recursive: true, force: true });
    }
    return out;
  },
};
