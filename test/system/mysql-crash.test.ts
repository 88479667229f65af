// A killed agent's sandbox MariaDB is adopted, never doubled: the module starts mariadbd
// detached (like the host's own server is to an agent), so a SIGKILL of the agent leaves it
// serving, and the next start in the same sandbox adopts that very server (found by its command
// line, even without its pid file). One that cannot be adopted (hung) is stopped before a new
// one starts. Each step runs the real module in a real child process that is SIGKILLed, against
// a real mariadbd; the first start also saves the datadir template.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/agent-process.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { rootQuery } from '../helpers/mysql.ts';
import { isAlive } from '../../agent/os/process.ts';
import { sandboxProcesses, stopSandboxProcesses } from '../helpers/crash.ts';

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-mycrash-'));
const socket = path.join(sandbox, 'run/mysqld.sock');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const children: ChildProcess[] = [];

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopSandboxProcesses(sandbox);
  await fsp.rm(sandbox, { recursive: true, force: true });
});

/** The module started in a child process ("the agent"); resolves once start() returned. */
async function agent(): Promise<{ child: ChildProcess; out: () => string; exited: Promise<void> }> {
  const moduleUrl = pathToFileURL(path.join(ROOT, 'agent/modules/mysql/index.ts')).href;
  const layoutUrl = pathToFileURL(path.join(ROOT, 'agent/os/layout.ts')).href;
  const execUrl = pathToFileURL(path.join(ROOT, 'agent/os/exec.ts')).href;
  const script = `
    const { pino } = await import('pino');
    const { createMysqlModule } = await import(${JSON.stringify(moduleUrl)});
    const { sandboxLayout } = await import(${JSON.stringify(layoutUrl)});
    const { exec } = await import(${JSON.stringify(execUrl)});
    const mod = createMysqlModule({ layout: sandboxLayout(${JSON.stringify(sandbox)}), exec,
      logger: pino({ level: 'info' }), broadcast() {}, agentPort: 0 });
    await mod.start();
    process.stdout.write('ready\\n');
    process.once('SIGTERM', () => void mod.stop().then(() => process.exit(0)));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    // An empty cache: the first start takes the real mariadb-install-db path and saves the template.
    env: { ...process.env, XDG_CACHE_HOME: path.join(sandbox, 'cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  for (let i = 0; i < 900 && !out.includes('ready') && child.exitCode === null; i++) await sleep(100);
  assert.ok(out.includes('ready'), `the module did not start:\n${out}`);
  return { child, out: () => out, exited };
}

const kill = async (a: { child: ChildProcess; exited: Promise<void> }): Promise<void> => {
  a.child.kill('SIGKILL');
  await a.exited;
};

/** The mariadbd processes of this sandbox. */
const servers = async (): Promise<number[]> =>
  (await sandboxProcesses(sandbox)).filter((p) => p.exe.startsWith('mariadbd')).map((p) => p.pid);

test('a killed agent leaves its sandbox MariaDB serving; the next start adopts it, or stops a hung one first', async () => {
  requireRoot('the MySQL crash test');
  requireProgram('mariadbd', 'mariadb-server');

  const first = await agent();
  const [pid] = await servers();
  assert.ok(pid !== undefined && isAlive(pid), 'mariadbd runs');
  await rootQuery(socket, 'CREATE DATABASE kept');
  // The fresh datadir was saved as the template later sandboxes copy (owner-only).
  const cacheDir = path.join(sandbox, 'cache/ponio');
  const [template] = readdirSync(cacheDir).filter(
    (n) => n.startsWith('mariadb-datadir-') && !n.endsWith('.tmp'),
  );
  assert.ok(template, 'a datadir template was saved');
  assert.ok(existsSync(path.join(cacheDir, template, 'mysql_upgrade_info')));
  assert.equal(statSync(path.join(cacheDir, template)).mode & 0o077, 0);

  // SIGKILL of the agent: the server goes on; the next start adopts the same process.
  await kill(first);
  await sleep(300);
  assert.ok(isAlive(pid), 'mariadbd outlives a killed agent');
  const second = await agent();
  assert.match(second.out(), /adopted the running sandbox MariaDB/);
  assert.deepEqual(await servers(), [pid], 'the same server, no second one');
  const kept = await rootQuery<{ n: string }>(socket, "SHOW DATABASES LIKE 'kept'");
  assert.equal(kept.length, 1, 'its data is there');

  // Without its pid file it is still found (by its command line), never doubled.
  await kill(second);
  await fsp.rm(path.join(sandbox, 'run/mysqld.pid'), { force: true });
  const third = await agent();
  assert.match(third.out(), /adopted the running sandbox MariaDB/);
  assert.deepEqual(await servers(), [pid]);

  // A hung one (SIGSTOP) cannot be adopted: it is stopped, then a new one serves the datadir.
  await kill(third);
  process.kill(pid, 'SIGSTOP');
  const fourth = await agent();
  assert.match(fourth.out(), /stopping a sandbox MariaDB that cannot be adopted/);
  assert.equal(isAlive(pid), false, 'the hung server is gone');
  const now = await servers();
  assert.equal(now.length, 1, `one server: ${JSON.stringify(now)}`);
  assert.notEqual(now[0], pid);
  assert.equal((await rootQuery(socket, "SHOW DATABASES LIKE 'kept'")).length, 1);

  // A clean stop of the agent stops the server it serves, adopted or not.
  const newPid = now[0] ?? 0;
  await kill(fourth);
  const fifth = await agent();
  assert.deepEqual(await servers(), [newPid]);
  fifth.child.kill('SIGTERM');
  await fifth.exited;
  assert.equal(isAlive(newPid), false, 'stopped with the agent');
  assert.deepEqual(await servers(), []);
  assert.match(readFileSync(path.join(sandbox, 'log/mariadb.log'), 'utf8'), /Shutdown complete/);
});
