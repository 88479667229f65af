// The agent resolves the panel's name again at every dial attempt. A reverse-mode agent process
// runs in a private mount namespace whose /etc/hosts is a file this test rewrites
// (test/helpers/mount-ns.ts bind-mounts it; glibc reads /etc/hosts on every lookup): while the
// name points at 127.0.0.3, where nothing listens, every attempt is refused at that address;
// once it points at 127.0.0.1 (the panel's agent listener) the next attempt connects. The same
// again after a live link is cut: a working address is not cached either.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mountNsCommand, type MountNsSpec } from '../helpers/mount-ns.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { recordReverseHost } from '../helpers/reverse.ts';
import { ROOT } from '../helpers/agent-process.ts';

const NAME = 'panel-dns.ponio.test';
let t: TestPanel;
let dir = '';
let hostsFile = '';
let agent: ChildProcess | null = null;
let stderr = '';
const lines: Array<{ msg?: string; err?: string; peer?: { address?: string } }> = [];

const pointAt = (ip: string): void => {
  // In place (same inode): the bind mount in the agent's namespace sees the new content.
  writeFileSync(hostsFile, `127.0.0.1 localhost\n${ip} ${NAME}\n`);
};
const refusedAt = (ip: string): number =>
  lines.filter((l) => l.msg === 'could not connect to the panel' && (l.err ?? '').includes(`${ip}:`)).length;
const connectedFrom = (ip: string): number =>
  lines.filter((l) => l.msg === 'connected to the panel' && l.peer?.address === ip).length;

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}; agent log:\n${JSON.stringify(lines.slice(-8))}\n${stderr.slice(-2000)}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  requireRoot('the DNS re-resolution test (a private mount namespace)');
  requireProgram('unshare', 'util-linux');
  t = await startTestPanel();
  dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-dns-'));
  const cert = await recordReverseHost(t, 'dns1');
  const etc = path.join(dir, 'sandbox/etc/ponio-agent');
  mkdirSync(etc, { recursive: true });
  writeFileSync(path.join(etc, 'agent.crt'), cert.certPem);
  writeFileSync(path.join(etc, 'agent.key'), cert.keyPem, { mode: 0o600 });
  writeFileSync(path.join(etc, 'ca.crt'), t.panel.ctx.pki.ca.certPem);
  const port = t.panel.agentListener?.port ?? 0;
  const cfg = path.join(etc, 'config.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      connect: [`wss://${NAME}:${port}`],
      sandbox: path.join(dir, 'sandbox'),
      logLevel: 'info',
      modules: { websites: false, ftp: false, mysql: false, firewall: false },
    }),
  );
  hostsFile = path.join(dir, 'hosts');
  pointAt('127.0.0.3');
  const spec: MountNsSpec = {
    callerNs: readlinkSync('/proc/self/ns/mnt'),
    scratch: path.join(dir, 'scratch'),
    binds: [[hostsFile, '/etc/hosts']],
    hide: [],
    mustNotExist: [],
  };
  mkdirSync(spec.scratch);
  const [cmd, ...args] = mountNsCommand(spec, process.execPath, [
    path.join(ROOT, 'bin/ponio-agent.js'),
    'serve',
    '--config',
    cfg,
  ]);
  // Its own process group: the whole namespace (unshare, the helper, the agent) is stopped together.
  const child = spawn(cmd ?? 'unshare', args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  agent = child;
  let buf = '';
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as (typeof lines)[0]);
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
});

after(async () => {
  const a = agent;
  if (a?.pid && a.exitCode === null && a.signalCode === null) {
    const exited = new Promise((r) => a.once('exit', r));
    process.kill(-a.pid, 'SIGTERM');
    const kill = setTimeout(() => process.kill(-(a.pid ?? 0), 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(kill);
  }
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('every dial attempt resolves the panel name again (before and after a live link)', async () => {
  const m = t.panel.ctx.hosts.manager;
  // The name points where nothing listens: attempts fail there, again and again.
  await until('two attempts refused at 127.0.0.3', () => refusedAt('127.0.0.3') >= 2, 20_000);
  assert.notEqual(m.status('dns1')?.state, 'online');
  // Re-pointed at the panel: the next attempt goes there and links up.
  pointAt('127.0.0.1');
  await m.waitForState('dns1', 'online', 20_000);
  await until('the agent to log its link from 127.0.0.1', () => connectedFrom('127.0.0.1') >= 1, 5_000);

  // A live link's address is not kept either: cut the link with the name pointing away.
  pointAt('127.0.0.3');
  const before = refusedAt('127.0.0.3');
  m.add({ id: 'dns1', mode: 'reverse' }); // the panel drops the link and waits for a new one
  await until('a refused attempt at the new address', () => refusedAt('127.0.0.3') > before, 20_000);
  assert.notEqual(m.status('dns1')?.state, 'online');
  pointAt('127.0.0.1');
  await m.waitForState('dns1', 'online', 20_000);
  await until('the agent to log its second link', () => connectedFrom('127.0.0.1') >= 2, 5_000);
});
