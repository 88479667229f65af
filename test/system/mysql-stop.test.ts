// A normal agent stop() (not a crash; see mysql-crash.test.ts for SIGKILL) shuts its sandbox
// MariaDB down cleanly and only returns once it is gone: "Shutdown complete" in the server's own
// log, no mariadbd of that sandbox left, its socket and pid file removed. Twice: the same sandbox
// starts again after a clean stop.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { makeTestPki } from '../helpers/pki.ts';
import { quietLogger } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { isAlive, mysqlOnlyAgentConfig } from '../helpers/mysql.ts';

let agent: RunningAgent | null = null;

after(async () => {
  await agent?.stop();
});

const alive = isAlive;

/** Pids of every mariadbd started with this sandbox's config file. */
function serversOf(cnf: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('mariadbd')) && cmd.includes(`--defaults-file=${cnf}`))
        pids.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

test('the agent’s stop() shuts its sandbox MariaDB down cleanly before it returns', async () => {
  requireRoot('the MySQL stop test');
  requireProgram('mariadbd', 'mariadb-server');
  const pki = await makeTestPki();
  const files = await pki.agent('db-stop');
  const sandbox = tempDir('ponio-mystop-');
  const config = mysqlOnlyAgentConfig(sandbox, files);
  const cnf = path.join(sandbox, 'var/lib/mysql-sandbox/my.cnf');
  const socket = path.join(sandbox, 'run/mysqld.sock');
  const pidFile = path.join(sandbox, 'run/mysqld.pid');
  const logFile = path.join(sandbox, 'log/mariadb.log');

  for (const round of [1, 2]) {
    agent = await startAgent(config, quietLogger);
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(alive(pid), `round ${round}: mariadbd runs`);
    assert.deepEqual(serversOf(cnf), [pid], `round ${round}: one server for this sandbox`);
    assert.ok(existsSync(socket), `round ${round}: its socket exists`);
    const logBefore = readFileSync(logFile, 'utf8').length;

    await agent.stop();
    agent = null;
    // No waiting here: stop() itself waits until the server has exited.
    assert.equal(alive(pid), false, `round ${round}: mariadbd is gone when stop() returns`);
    assert.deepEqual(serversOf(cnf), [], `round ${round}: no mariadbd of this sandbox is left`);
    assert.equal(existsSync(socket), false, `round ${round}: the socket is removed`);
    assert.equal(existsSync(pidFile), false, `round ${round}: the pid file is removed`);
    const log = readFileSync(logFile, 'utf8').slice(logBefore);
    assert.match(log, /Normal shutdown/, `round ${round}: a normal shutdown:\n${log}`);
    assert.match(log, /Shutdown complete/, `round ${round}: completed:\n${log}`);
  }
});
