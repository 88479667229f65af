// Crash safety of every firewall mutation: a real agent process is killed at every step of each
// firewall event in turn (test/helpers/kill-points.ts), the first of them a host's very first
// change (no firewall.json yet). After each restart the host is exactly as before the call or
// exactly as after it: iptables-save and ip6tables-save of PonIO's chains (in a network
// namespace this test creates), firewall.json, the boot-time files, and the agent's inSync.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fsp, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { freePort } from '../helpers/enroll.ts';
import { KillHarness, killAtEveryStep, tempFiles, type KillScenario } from '../helpers/kill-points.ts';

const HOST = 'crashfw';
const NS = `ponio-crashfw-${randomBytes(3).toString('hex')}`;
let pki: TestPki;
let sandbox: string;
let m: ConnectionManager;
let h: KillHarness;

const state = (rel: string): string => path.join(sandbox, 'var/lib/ponio-agent', rel);
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

async function snapshot(): Promise<unknown> {
  const list = await h.ok('list firewall rules', {});
  return {
    v4: ponioLines(ns('iptables-save', [])),
    v6: ponioLines(ns('ip6tables-save', [])),
    saved: normalise(await fsp.readFile(state('firewall.json'), 'utf8').catch(() => null)),
    boot4: normalise(await fsp.readFile(state('firewall.rules.v4'), 'utf8').catch(() => null)),
    boot6: normalise(await fsp.readFile(state('firewall.rules.v6'), 'utf8').catch(() => null)),
    inSync: list.inSync,
    pending: list.pending !== null,
    temps: await tempFiles([state(''), state('calls')]),
  };
}

/** No rules, blocks, baseline or pending change (through the agent). */
async function clean(): Promise<void> {
  let list = await h.ok('list firewall rules', {});
  if (list.pending) await h.ok('confirm firewall', {});
  // The baseline first: without its final reject, deleting its SSH rule closes nothing.
  if (list.baseline) await h.ok('remove firewall baseline', {});
  list = await h.ok('list firewall rules', {});
  for (const r of list.rules) await h.ok('delete firewall rule', { id: r.id });
  for (const b of list.blocks) await h.ok('unblock ip', { address: b.address });
}

/** A host PonIO never changed: no state files, no PonIO chains (the agent restarted to forget). */
async function pristine(): Promise<void> {
  for (const f of ['firewall.json', 'firewall.rules.v4', 'firewall.rules.v6'])
    await fsp.rm(state(f), { force: true });
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

const oneRule = async (): Promise<void> => {
  await clean();
  await h.ok('add firewall rule', { action: 'allow', protocol: 'tcp', port: '8080', comment: 'kill test' });
};

const scenarios: KillScenario[] = [
  {
    event: 'add firewall rule',
    params: () => ({ action: 'allow', protocol: 'tcp', port: '8081', comment: 'first change' }),
    setup: pristine,
    snapshot,
  },
  {
    event: 'delete firewall rule',
    params: async () => ({ id: (await h.ok('list firewall rules', {})).rules[0]?.id ?? 'none' }),
    setup: oneRule,
    snapshot,
  },
  { event: 'block ip', params: () => ({ address: '192.0.2.7' }), setup: clean, snapshot },
  {
    event: 'unblock ip',
    params: () => ({ address: '192.0.2.7' }),
    setup: async () => {
      await clean();
      await h.ok('block ip', { address: '192.0.2.7' });
    },
    snapshot,
  },
  // Always applied in confirm mode: a restart reverts it like an unconfirmed change.
  { event: 'apply firewall baseline', params: () => ({}), setup: clean, snapshot },
  {
    event: 'remove firewall baseline',
    params: () => ({}),
    setup: async () => {
      await clean();
      await h.ok('apply firewall baseline', {});
      await h.ok('confirm firewall', {});
    },
    snapshot,
  },
  {
    event: 'reapply firewall',
    params: () => ({}),
    // Drift: someone flushed PonIO's chain by hand (the agent's start puts it back, so after each start).
    setup: async () => {
      const list = await h.ok('list firewall rules', {});
      if (list.rules.length !== 1 || list.pending) await oneRule();
      ns('iptables', ['-F', 'PONIO-INPUT']);
    },
    snapshot,
  },
  {
    event: 'confirm firewall',
    params: () => ({}),
    // A pending change (it closes SSH): a restart reverts it, which is a whole state too.
    setup: async () => {
      await clean();
      const reverted = await snapshot();
      await h.ok('add firewall rule', {
        action: 'reject',
        protocol: 'tcp',
        port: '22',
        comment: 'closes ssh',
      });
      return [reverted];
    },
    snapshot,
  },
];

before(async () => {
  requireRoot('the firewall crash test');
  requireProgram('ip', 'iproute2');
  for (const p of ['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'iptables-save'])
    requireProgram(p, 'iptables');
  execFileSync('ip', ['netns', 'add', NS]);
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-crashfw-'));
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(
    config,
    JSON.stringify({
      modules: {
        websites: false,
        ftp: false,
        mysql: false,
        firewall: { netns: NS, confirmTimeoutSeconds: 600 },
      },
    }),
  );
  const agentPort = await freePort();
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agentPort });
  h = new KillHarness(m, HOST, [
    ...['--config', config, '--listen', `127.0.0.1:${agentPort}`, '--sandbox', sandbox],
    ...['--cert', files.certFile, '--key', files.keyFile, '--ca', files.caFile],
  ]);
});

after(async () => {
  await h?.stop();
  await m?.close();
  try {
    execFileSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
  } catch {
    /* not created */
  }
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

for (const s of scenarios) {
  test(`a kill at any step of "${s.event}" leaves it fully applied or fully absent`, async (t) => {
    const r = await killAtEveryStep(h, s);
    t.diagnostic(`${r.steps} kill points: ${r.outcomes.join(' ')}`);
    assert.ok(r.steps >= 2, `${s.event}: ${r.steps} kill points`);
  });
}
