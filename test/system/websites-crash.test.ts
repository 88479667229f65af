// An agent killed (SIGKILL) in the middle of `create website` leaves Apache with the old or the
// new config, never a broken one. The agent runs as a real process; a sandbox-only test hook
// (<stateDir>/websites-test-hooks.json, crashAt) makes it kill itself at each step in turn.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { eventually, fetchSite, portOf } from '../helpers/websites.ts';

const HOST = 'crash1';
let pki: TestPki;
let sandbox: string;
let args: string[];
let proc: AgentProcess | null = null;
let m: ConnectionManager;
let apache2: string;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const apachePid = async (): Promise<number> =>
  Number((await fsp.readFile(path.join(sandbox, 'run/apache2/apache2.pid'), 'utf8')).trim());

async function startAgentProcess(): Promise<void> {
  proc = await spawnAgent(args);
  await m.waitForState(HOST, 'online', 15_000);
}

before(async () => {
  apache2 = requireProgram('apache2', 'apache2');
  requireRoot('the websites crash test');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-webcrash-'));
  const port = await freePort();
  args = ['--listen', `127.0.0.1:${port}`, '--cert', files.certFile, '--key', files.keyFile];
  args.push('--ca', files.caFile, '--sandbox', sandbox);
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port });
  await startAgentProcess();
});

after(async () => {
  await m?.close();
  await proc?.stop();
  // The agent stops its Apache; if a failed test left an orphan, stop it too.
  try {
    process.kill(await apachePid(), 'SIGTERM');
  } catch {
    /* not running */
  }
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
});

test('killing the agent between write and reload leaves the old or the new config, never a broken one', async () => {
  const keep = await m.call(HOST, 'create website', { domain: 'keep.test' });
  assert.ok(keep.ok, JSON.stringify(keep));
  const port = portOf(keep.data.url);
  assert.equal((await fetchSite(port, 'keep.test')).status, 200);
  const hooks = path.join(sandbox, 'var/lib/ponio-agent/websites-test-hooks.json');
  const mainConf = path.join(sandbox, 'etc/apache2/apache2.conf');

  // after-tree / after-vhost-write: nothing is live yet → old config. after-enable: the link
  // to a vhost the checker already accepted exists → new config.
  for (const [crashAt, expectNew] of [
    ['after-tree', false],
    ['after-vhost-write', false],
    ['after-enable', true],
  ] as const) {
    const domain = `${crashAt}.test`;
    await fsp.writeFile(hooks, JSON.stringify({ crashAt }));
    const dying = proc!;
    const r = await m.call(HOST, 'create website', { domain });
    assert.equal(!r.ok && r.error.code, 'unavailable', `${crashAt}: the agent died mid-call`);
    await new Promise<void>((resolve) => {
      if (dying.proc.exitCode !== null || dying.proc.signalCode !== null) resolve();
      else dying.proc.once('exit', () => resolve());
    });
    assert.equal(dying.proc.signalCode, 'SIGKILL');
    await fsp.rm(hooks);

    // Before any recovery: the config on disk passes Apache's own checker...
    execFileSync(apache2, ['-t', '-f', mainConf], { stdio: 'pipe' });
    // ...and the Apache the dead agent left behind survives a graceful restart from it (as a
    // logrotate or a reboot would do) and keeps serving.
    const pid = await apachePid();
    const errorLog = path.join(sandbox, 'log/apache2/error.log');
    const offset = (await fsp.stat(errorLog)).size;
    process.kill(pid, 'SIGUSR1');
    await eventually(
      async () => /AH00489/.test((await fsp.readFile(errorLog, 'utf8')).slice(offset)),
      'Apache to finish the graceful restart from the on-disk config',
      10_000,
    );
    const state = (await fsp.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.[0];
    assert.ok(state !== undefined && state !== 'Z', `Apache still running (state ${state})`);
    assert.equal((await fetchSite(port, 'keep.test')).status, 200);
    assert.equal((await fetchSite(port, domain)).status, expectNew ? 200 : 404, `${crashAt}: served?`);

    // The restarted agent adopts its Apache and finishes the job: old stays old, new stays new.
    await startAgentProcess();
    const list = await m.call(HOST, 'list websites', {});
    assert.ok(list.ok);
    const site = list.data.websites.find((w) => w.domain === domain);
    const siteDir = path.join(sandbox, 'var/www', domain);
    if (expectNew) {
      assert.equal(site?.enabled, true, `${crashAt}: kept`);
      assert.equal((await fetchSite(port, domain)).status, 200);
    } else {
      assert.equal(site, undefined, `${crashAt}: no half site is listed`);
      await assert.rejects(fsp.access(siteDir), `${crashAt}: no half site tree is left`);
      await assert.rejects(fsp.access(path.join(sandbox, 'etc/apache2/sites-available', `${domain}.conf`)));
    }
    assert.equal((await fetchSite(port, 'keep.test')).status, 200);
    assert.equal(await apachePid(), pid, 'the same Apache kept running throughout');
  }
});
