// A killed agent must not leave its sandbox MariaDB behind: the module starts mariadbd through
// `setpriv --pdeathsig TERM`, so the kernel shuts it down when the agent process dies, even by
// SIGKILL. A real child process runs the module, is killed, and the real mariadbd must go away
// cleanly ("Shutdown complete" in its own log).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/agent-process.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { isAlive } from '../helpers/mysql.ts';

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-mycrash-'));
const alive = isAlive;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let mariadbPid = 0;

after(async () => {
  if (mariadbPid > 0 && alive(mariadbPid)) process.kill(mariadbPid, 'SIGKILL');
  await fsp.rm(sandbox, { recursive: true, force: true });
});

test('SIGKILL of the agent shuts its sandbox MariaDB down cleanly; the first start saves a datadir template', async () => {
  requireRoot('the MySQL crash test');
  requireProgram('mariadbd', 'mariadb-server');
  requireProgram('setpriv', 'util-linux');
  const moduleUrl = pathToFileURL(path.join(ROOT, 'agent/modules/mysql/index.ts')).href;
  const layoutUrl = pathToFileURL(path.join(ROOT, 'agent/os/layout.ts')).href;
  const execUrl = pathToFileURL(path.join(ROOT, 'agent/os/exec.ts')).href;
  const script = `
    const { pino } = await import('pino');
    const { createMysqlModule } = await import(${JSON.stringify(moduleUrl)});
    const { sandboxLayout } = await import(${JSON.stringify(layoutUrl)});
    const { exec } = await import(${JSON.stringify(execUrl)});
    const mod = createMysqlModule({ layout: sandboxLayout(${JSON.stringify(sandbox)}), exec,
      logger: pino({ level: 'silent' }), broadcast() {}, agentPort: 0 });
    await mod.start();
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    // An empty cache: this run takes the real mariadb-install-db path and saves the template.
    env: { ...process.env, XDG_CACHE_HOME: path.join(sandbox, 'cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    for (let i = 0; i < 600 && !out.includes('ready') && child.exitCode === null; i++) await sleep(100);
    assert.ok(out.includes('ready'), `the module did not start:\n${out}`);
    mariadbPid = Number(readFileSync(path.join(sandbox, 'run/mysqld.pid'), 'utf8').trim());
    assert.ok(alive(mariadbPid), 'mariadbd runs');
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  for (let i = 0; i < 300 && alive(mariadbPid); i++) await sleep(100);
  assert.equal(alive(mariadbPid), false, 'mariadbd is gone after the agent was killed');
  const log = readFileSync(path.join(sandbox, 'log/mariadb.log'), 'utf8');
  assert.match(log, /Shutdown complete/, 'a clean shutdown, not a crash');
  // The fresh datadir was saved as the template later sandboxes copy (owner-only).
  const cacheDir = path.join(sandbox, 'cache/ponio');
  const [template] = readdirSync(cacheDir).filter(
    (n) => n.startsWith('mariadb-datadir-') && !n.endsWith('.tmp'),
  );
  assert.ok(template, 'a datadir template was saved');
  assert.ok(existsSync(path.join(cacheDir, template, 'mysql_upgrade_info')));
  assert.equal(statSync(path.join(cacheDir, template)).mode & 0o077, 0);
});
