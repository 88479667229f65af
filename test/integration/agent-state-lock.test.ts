// One agent per state directory: a second agent on the same sandbox refuses to start with a
// clear message naming the first one's pid; after the first is killed with -9 (its lock left
// behind), a new agent takes the directory over.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { ROOT, spawnAgent, type AgentProcess } from '../helpers/agent-process.ts';

let pki: TestPki | undefined;
let sandbox = '';
const procs: AgentProcess[] = [];

after(async () => {
  for (const p of procs) await p.kill();
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

/** Runs `ponio-agent serve ARGS` to its exit (bounded): exit code and output. */
function runToExit(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin/ponio-agent.js'), 'serve', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test('a second agent on the same state directory refuses; a kill -9 leaves no lock that blocks the next', async () => {
  pki = await makeTestPki();
  const files = await pki.agent('locked1');
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-statelock-'));
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(
    config,
    JSON.stringify({ modules: { websites: false, ftp: false, mysql: false, firewall: false } }),
  );
  const args = ['--config', config, '--listen', '127.0.0.1:0', '--sandbox', sandbox];
  args.push('--cert', files.certFile, '--key', files.keyFile, '--ca', files.caFile);

  const first = await spawnAgent(args);
  procs.push(first);
  const lock = path.join(sandbox, 'var/lib/ponio-agent/agent.lock');
  assert.match(
    readFileSync(lock, 'utf8'),
    new RegExp(`^${first.proc.pid} \\d+\\n$`),
    'the lock names its holder',
  );

  const second = await runToExit(args);
  assert.notEqual(second.code, 0);
  assert.match(
    second.out,
    new RegExp(
      `Another PonIO agent \\(pid ${first.proc.pid}\\) is using the state directory .*; only one agent may serve it`,
    ),
  );
  assert.equal(first.proc.exitCode, null, 'the first agent still runs');

  await first.kill();
  assert.match(readFileSync(lock, 'utf8'), new RegExp(`^${first.proc.pid} `), 'kill -9 left its lock');
  const third = await spawnAgent(args);
  procs.push(third);
  assert.match(
    readFileSync(lock, 'utf8'),
    new RegExp(`^${third.proc.pid} `),
    'the stale lock was taken over',
  );
  // (The CLI installs its SIGTERM handler right after "agent ready": give it that moment.)
  await new Promise((r) => setTimeout(r, 300));
  await third.stop();
  assert.equal(third.proc.exitCode, 0, third.output().slice(-2000));
  await assert.rejects(fsp.access(lock), 'a clean stop removes the lock');
});
