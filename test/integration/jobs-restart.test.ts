// Jobs across panel processes: `ponio-panel job run --wait` queues a job that a real panel
// process (`ponio-panel serve`) claims and runs against 20 real agents; the panel is SIGKILLed
// mid-job, and the next panel marks the job interrupted with what had run (the CLI, still
// waiting, prints the record and exits 1). Resume and retry are explicit and reach only the
// hosts they should, counted from the agents' side. Exit codes say whether every host succeeded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startPanel, type RunningPanel } from '../../server/main.ts';
import { loadPanelConfig } from '../../server/config.ts';
import { openDatabase } from '../../server/db/database.ts';
import { JobsStore } from '../../server/jobs/store.ts';
import { startFleet, type Fleet } from '../helpers/fleet.ts';
import { ROOT } from '../helpers/agent-process.ts';

const BIN = path.join(ROOT, 'bin/ponio-panel.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-jobs-restart-'));
const data = path.join(dir, 'data');
const cfgFile = path.join(dir, 'panel.json');
let fleet: Fleet;
let panel: RunningPanel | null = null;
const children: ChildProcess[] = [];

const quiet = pino({ level: process.env.PONIO_TEST_LOG ?? 'silent' });
const config = () =>
  loadPanelConfig({ host: '127.0.0.1', port: 0, dataDir: data, logLevel: 'silent', jobLeaseSeconds: 1 }, {});

/** The CLI as a process (asynchronously: the in-process panel must keep running meanwhile). */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args, '--data-dir', data], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    }),
  );
}

/** `ponio-panel serve` as a process of its own; resolves once it listens. */
async function servePanel(): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--config', cfgFile, '--port', '0', '--data-dir', data],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PONIO_PANEL_LOG_LEVEL: 'silent' },
    },
  );
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const until = Date.now() + 60_000;
  while (!/PonIO panel: https/.test(out) && Date.now() < until && child.exitCode === null)
    await new Promise((r) => setTimeout(r, 100));
  assert.match(out, /PonIO panel: https/, out);
  return child;
}

const store = () => {
  const db = openDatabase(path.join(data, 'panel.db'));
  return { db, jobs: new JobsStore(db) };
};

before(async () => {
  writeFileSync(cfgFile, JSON.stringify({ jobLeaseSeconds: 1 }));
  // A first panel creates the database, the CA and the hosts of 20 real agents, then stops.
  const first = await startPanel(config(), quiet);
  fleet = await startFleet(first, 'rs', 20);
  await first.close();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await panel?.close();
  await fleet?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a panel killed mid-job leaves an interrupted record; resume and retry are explicit', async () => {
  const serve = await servePanel();
  await fleet.set({ delayMs: 300 });
  await fleet.reset();
  const waiting = spawn(
    process.execPath,
    [BIN, 'job', 'run', 'ping', '--target', 'all', '--batch', '2', '--wait', '--data-dir', data],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(waiting);
  let out = '';
  waiting.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  waiting.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => waiting.once('exit', (code) => r(code)));
  // Let a few hosts finish, then kill the panel that runs the job.
  const until = Date.now() + 30_000;
  for (;;) {
    const s = store();
    const c = s.jobs.counts(1);
    s.db.close();
    if (c.ok >= 4) break;
    assert.ok(Date.now() < until, 'the job did not progress');
    await new Promise((r) => setTimeout(r, 50));
  }
  serve.kill('SIGKILL');
  await new Promise((r) => serve.once('exit', r));
  const agentSide = (await fleet.stats()).calls.filter((x) => x.event === 'ping');

  // The next panel sees the dead runner's lease run out and records what ran.
  panel = await startPanel(config(), quiet);
  const code = await exited;
  assert.equal(code, 1, out);
  const s = store();
  const job = s.jobs.get(1);
  const c = s.jobs.counts(1);
  const hosts = s.jobs.hosts(1);
  s.db.close();
  assert.equal(job?.state, 'interrupted');
  assert.equal(job?.runner, null);
  assert.match(
    job?.message ?? '',
    /^Interrupted: the panel running this job stopped after \d+ of 20 hosts had started/,
  );
  assert.ok(
    c.timeout >= 1 && c.timeout <= 2,
    `in flight at the kill: outcome unknown (${JSON.stringify(c)})`,
  );
  assert.equal(c.ok + c.timeout + c.pending, 20);
  assert.ok(c.pending > 0);
  // Every host that started reached an agent; none that is still pending did.
  const started = new Set(hosts.filter((h) => h.state !== 'pending').map((h) => h.host_id));
  const reached = new Set(agentSide.map((x) => x.hostId));
  for (const h of reached) assert.ok(started.has(h), `${h} was called but is recorded pending`);
  assert.ok(hosts.filter((h) => h.state === 'timeout').every((h) => h.error_code === 'interrupted'));
  // The waiting CLI printed each finished host and the recap.
  assert.match(out, /^rs000 {19} ok \d+ ms$/m);
  assert.match(
    out,
    new RegExp(
      `job 1 interrupted: 20 hosts: ok=${c.ok} failed=0 unreachable=0 timeout=${c.timeout} skipped=0 pending=${c.pending}`,
    ),
  );

  // Resume: only the hosts that never started.
  await fleet.set({ delayMs: 0 });
  await fleet.reset();
  const resumed = await cli(['job', 'resume', '1']);
  assert.equal(resumed.status, 0, resumed.stderr);
  await panel.ctx.jobs.waitFinished(1, 30_000);
  const afterResume = (await fleet.stats()).calls
    .filter((x) => x.event === 'ping')
    .map((x) => x.hostId)
    .sort();
  assert.equal(afterResume.length, c.pending);
  for (const h of afterResume) assert.ok(!started.has(h), `${h} ran again on resume`);
  const show = await cli(['job', 'show', '1']);
  assert.equal(show.status, 1, 'the unknown outcomes are not successes');
  assert.match(show.stdout, /timeout \(interrupted\): The panel stopped during this call: outcome unknown\./);

  // Retry: only the hosts whose outcome was unknown; then every host succeeded.
  await fleet.reset();
  assert.equal((await cli(['job', 'retry', '1'])).status, 0);
  await new Promise((r) => setTimeout(r, 1_500));
  await panel.ctx.jobs.waitFinished(1, 30_000);
  assert.equal((await fleet.stats()).calls.filter((x) => x.event === 'ping').length, c.timeout);
  const final = await cli(['job', 'show', '1', '--json']);
  assert.equal(final.status, 0, final.stdout);
  assert.equal(JSON.parse(final.stdout).counts.ok, 20);
});

test('job run --wait: per-host lines, the recap, exit 0 only when every host succeeded', async () => {
  await fleet.set({ delayMs: 0, failHosts: [] });
  const ok = await cli(['job', 'run', 'ping', '--target', 'all', '--batch', '5', '--wait']);
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^job \d+: ping \(window 5\)$/m);
  assert.equal(ok.stdout.split('\n').filter((l) => / ok \d+ ms$/.test(l)).length, 20);
  assert.match(ok.stdout, /job \d+ done: 20 hosts: ok=20 failed=0 unreachable=0 timeout=0 skipped=0/);

  await fleet.set({ failHosts: ['rs003'] });
  const bad = await cli(['job', 'run', 'ping', '--hosts', 'rs002,rs003', '--wait']);
  assert.equal(bad.status, 1, bad.stdout);
  assert.match(bad.stdout, /^rs003 +failed \(failed-precondition\): injected failure on rs003/m);
  assert.match(bad.stdout, /ok=1 failed=1/);

  // A dry run of an event the agents lack: every host skipped for capability, exit 1.
  const dry = await cli([
    'job',
    'run',
    'block ip',
    '--target',
    'all',
    '--param',
    'address=203.0.113.9',
    '--dry-run',
    '--wait',
  ]);
  assert.equal(dry.status, 1);
  assert.match(dry.stdout, /skipped \(capability\): The agent does not offer firewall/);

  // Refused before anything is queued: exit 2 with a sentence.
  for (const args of [
    ['job', 'run', 'block ip', '--target', 'all', '--param', 'address=1.2.3.4;reboot'],
    ['job', 'run', 'nosuch', '--target', 'all'],
    ['job', 'run', 'ping', '--target', 'role==x'],
    ['job', 'run', 'ping', '--target', 'all', '--batch', '0'],
    ['job', 'run', 'ping', '--target', 'all', '--param', 'nope=1'],
  ]) {
    const r = await cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^ponio-panel: \S.*\n$/);
  }
  const labelled = await cli(['host', 'label', 'rs001', 'role=web', 'dc=ams']);
  assert.equal(labelled.status, 0, labelled.stderr);
  assert.equal(labelled.stdout, 'rs001: dc=ams, role=web\n');
  assert.equal((await cli(['host', 'label', 'rs001', 'role=we b\n'])).status, 2);
  const sel = await cli(['job', 'run', 'ping', '--target', 'role=web,dc!=fra', '--wait']);
  assert.equal(sel.status, 0, sel.stderr);
  assert.match(sel.stdout, /1 host: ok=1/);
});
