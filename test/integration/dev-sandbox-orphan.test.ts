// `npm start` after a kill -9 of the panel: the sandbox agent the dead panel left running is
// stopped before the new one starts, so exactly one agent serves the sandbox (two on the same
// sandbox once re-applied stale firewall state over each other).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lockHolder } from '../../shared/agent-lock.ts';

const BIN = path.resolve('bin/ponio-panel.js');
const children: ChildProcess[] = [];
let dir = '';
const orphans: number[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Agent processes serving this sandbox (their command line names its config file). */
function sandboxAgents(cfgFile: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('ponio-agent.js')) && cmd.includes(cfgFile)) out.push(Number(e));
    } catch {
      /* exited */
    }
  }
  return out;
}

async function startPanel(data: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--dev-sandbox', '--port', '0', '--data-dir', data], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 90_000;
  while (!/Sandbox host: (online|not online)/.test(out) && Date.now() < deadline && child.exitCode === null)
    await new Promise((r) => setTimeout(r, 250));
  assert.match(out, /Sandbox host: online/, out);
  return child;
}

test('a restarted dev panel stops the sandbox agent a kill -9 of the previous panel left running', async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-orphan-'));
  chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  // A light sandbox: no private services (the agent and its lock are what this test is about).
  const etc = path.join(data, 'sandbox/etc/ponio-agent');
  mkdirSync(etc, { recursive: true });
  const cfgFile = path.join(etc, 'config.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({ modules: { websites: false, ftp: false, mysql: false, firewall: false } }),
  );
  const stateDir = path.join(data, 'sandbox/var/lib/ponio-agent');

  const first = await startPanel(data);
  const agent1 = (await lockHolder(stateDir))?.pid;
  assert.ok(agent1, 'the sandbox agent holds the state-directory lock');
  orphans.push(agent1);
  first.kill('SIGKILL');
  await new Promise<void>((r) =>
    first.exitCode !== null || first.signalCode !== null ? r() : first.once('exit', () => r()),
  );
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(sandboxAgents(cfgFile), [agent1], 'kill -9 of the panel left its agent running');

  const second = await startPanel(data);
  const agent2 = (await lockHolder(stateDir))?.pid;
  assert.ok(agent2 !== undefined && agent2 !== agent1, 'a new agent holds the lock');
  assert.deepEqual(sandboxAgents(cfgFile), [agent2], 'exactly one agent serves the sandbox');
  orphans.push(agent2);
  second.kill('SIGINT');
  await new Promise<void>((r) => (second.exitCode !== null ? r() : second.once('exit', () => r())));
});
