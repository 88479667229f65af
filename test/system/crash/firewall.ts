// The firewall crash cases (run by test/system/crash-firewall.test.ts, harness test/helpers/crash.ts),
// the first of them a host's very first change (no firewall.json yet). After each kill and
// restart the host is exactly as before the call or exactly as after it: iptables-save and
// ip6tables-save of PonIO's chains (in a network namespace this suite creates), firewall.json,
// the boot-time files, and the agent's inSync.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { requireProgram } from '../../helpers/programs.ts';
import { crashCase, crashSuite, type CrashHost } from '../../helpers/crash.ts';

const NS = `ponio-crashfw-${randomBytes(3).toString('hex')}`;

const ns = (cmd: string, args: string[], input?: string): string =>
  execFileSync('ip', ['netns', 'exec', NS, cmd, ...args], {
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString();

/** PonIO's lines of one family's iptables-save, without counters and with rule ids normalised. */
const ponioLines = (save: string): string[] =>
  save
    .split('\n')
    .filter((l) => l.includes('PONIO'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '').replace(/ponio:r[0-9a-f]{8}/g, 'ponio:rID'));

/** A saved file with volatile ids and times normalised (JSON: parsed, keys sorted). */
const normalise = (text: string | null): unknown => {
  if (text === null) return null;
  const t = text.replace(/r[0-9a-f]{8}/g, 'rID').replace(/"createdAt": ?\d+/g, '"createdAt":0');
  if (!t.startsWith('{')) return t;
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, sorted(x)]),
          )
        : v;
  return sorted(JSON.parse(t));
};

const saved = async (h: CrashHost, f: string): Promise<unknown> =>
  normalise(await fsp.readFile(h.state(f), 'utf8').catch(() => null));

async function snapshot(h: CrashHost): Promise<unknown> {
  const list = await h.ok('list firewall rules', {});
  return {
    v4: ponioLines(ns('iptables-save', [])),
    v6: ponioLines(ns('ip6tables-save', [])),
    saved: await saved(h, 'firewall.json'),
    boot4: await saved(h, 'firewall.rules.v4'),
    boot6: await saved(h, 'firewall.rules.v6'),
    inSync: list.inSync,
    pending: list.pending !== null,
  };
}

/** No rules, blocks, baseline or pending change (through the agent). */
async function clean(h: CrashHost): Promise<void> {
  let list = await h.ok('list firewall rules', {});
  if (list.pending) await h.ok('confirm firewall', {});
  // The baseline first: without its final reject, deleting its SSH rule closes nothing.
  if (list.baseline) await h.ok('remove firewall baseline', {});
  list = await h.ok('list firewall rules', {});
  for (const r of list.rules) await h.ok('delete firewall rule', { id: r.id });
  for (const b of list.blocks) await h.ok('unblock ip', { address: b.address });
}

/** A host PonIO never changed: no state files, no PonIO chains (the agent restarted to forget). */
async function pristine(h: CrashHost): Promise<void> {
  for (const f of ['firewall.json', 'firewall.rules.v4', 'firewall.rules.v6'])
    await fsp.rm(h.state(f), { force: true });
  for (const bin of ['iptables-restore', 'ip6tables-restore']) {
    const save = ns(bin === 'iptables-restore' ? 'iptables-save' : 'ip6tables-save', []);
    if (!save.includes('PONIO-INPUT')) continue;
    ns(
      bin,
      ['--noflush'],
      '*filter\n-D INPUT -j PONIO-INPUT\n-F PONIO-INPUT\n-F PONIO-BLOCK\n-X PONIO-INPUT\n-X PONIO-BLOCK\nCOMMIT\n',
    );
  }
  await h.restart();
}

const oneRule = async (h: CrashHost): Promise<void> => {
  await clean(h);
  await h.ok('add firewall rule', { action: 'allow', protocol: 'tcp', port: '8080', comment: 'kill test' });
};

const ruleId = async (h: CrashHost): Promise<string> =>
  (await h.ok('list firewall rules', {})).rules[0]?.id ?? 'none';

export default crashSuite({
  name: 'firewall',
  requires() {
    requireProgram('ip', 'iproute2');
    for (const p of ['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'iptables-save'])
      requireProgram(p, 'iptables');
  },
  before() {
    execFileSync('ip', ['netns', 'add', NS]);
  },
  after() {
    try {
      execFileSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
    } catch {
      /* not created */
    }
  },
  modules: () => ({ firewall: { netns: NS, confirmTimeoutSeconds: 600 } }),
  snapshot,
  cases: [
    crashCase({
      event: 'add firewall rule',
      label: "the host's first change",
      params: () => ({ action: 'allow', protocol: 'tcp', port: '8081', comment: 'first change' }),
      otherParams: () => ({ action: 'allow', protocol: 'tcp', port: '8082', comment: 'other' }),
      setup: pristine,
    }),
    crashCase({
      event: 'delete firewall rule',
      params: async (h) => ({ id: await ruleId(h) }),
      otherParams: () => ({ id: 'r00000000' }),
      setup: oneRule,
    }),
    crashCase({
      event: 'block ip',
      params: () => ({ address: '192.0.2.7' }),
      otherParams: () => ({ address: '192.0.2.8' }),
      setup: clean,
    }),
    crashCase({
      event: 'unblock ip',
      params: () => ({ address: '192.0.2.7' }),
      otherParams: () => ({ address: '192.0.2.8' }),
      setup: async (h) => {
        await clean(h);
        await h.ok('block ip', { address: '192.0.2.7' });
      },
    }),
    // Always applied in confirm mode: a restart reverts it like an unconfirmed change.
    crashCase({ event: 'apply firewall baseline', params: () => ({}), setup: clean, restartReverts: true }),
    crashCase({
      event: 'remove firewall baseline',
      params: () => ({}),
      setup: async (h) => {
        await clean(h);
        await h.ok('apply firewall baseline', {});
        await h.ok('confirm firewall', {});
      },
    }),
    crashCase({
      event: 'reapply firewall',
      params: () => ({}),
      startApplies: true,
      // Drift: someone flushed PonIO's chain by hand (the agent's start puts it back, so after each start).
      setup: async (h) => {
        const list = await h.ok('list firewall rules', {});
        if (list.rules.length !== 1 || list.pending) await oneRule(h);
        ns('iptables', ['-F', 'PONIO-INPUT']);
      },
    }),
    crashCase({
      event: 'confirm firewall',
      params: () => ({}),
      // A pending change (it closes SSH): a restart reverts it, which is a whole state too.
      setup: async (h) => {
        await clean(h);
        const reverted = await snapshot(h);
        await h.ok('add firewall rule', {
          action: 'reject',
          protocol: 'tcp',
          port: '22',
          comment: 'closes ssh',
        });
        return [reverted];
      },
    }),
  ],
});
