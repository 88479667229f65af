// Issue 16 item 8: a file dropped into sites-enabled by hand that passes `apache2 -t` but stops
// Apache at its next start (an ErrorLog naming a directory) must not take the sites down on
// PonIO's next change. A sandbox agent (in-process, agent/main.ts) with its private real Apache,
// driven over the real RPC path; other sites are fetched continuously while PonIO is asked to
// change things, and the reply must name the file at fault.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { fetchSite, portOf } from '../helpers/websites.ts';

const HOST = 'foreign1';
let pki: TestPki;
let agent: RunningAgent;
let m: ConnectionManager;
let sandbox: string;
let port: number;
let apache2: string;

const conf = (rel: string): string => path.join(sandbox, 'etc/apache2', rel);
const apachePid = async (): Promise<number> =>
  Number((await fsp.readFile(path.join(sandbox, 'run/apache2/apache2.pid'), 'utf8')).trim());

function call<E extends EventName>(event: E, params: RequestIn<E>) {
  return m.call(HOST, event, params);
}

/** Fetches `host` every few ms until stopped; returns every answer that was not a 200. */
function watchServed(host: string): { stop(): Promise<string[]>; count(): number } {
  const failures: string[] = [];
  let n = 0;
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 20_000; i++) {
      try {
        const r = await fetchSite(port, host);
        if (r.status !== 200) failures.push(`status ${r.status}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
      n++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    count: () => n,
    async stop() {
      running = false;
      await loop;
      return failures;
    },
  };
}

/** A vhost nobody asked PonIO for, written straight into sites-enabled (as an admin would). */
async function dropForeign(name: string, errorLog: string): Promise<string> {
  const file = conf(`sites-enabled/${name}`);
  await fsp.writeFile(
    file,
    [
      '<VirtualHost *:${PONIO_HTTP_PORT}>',
      '    ServerName foreign.test',
      `    ErrorLog "${errorLog}"`,
      '</VirtualHost>',
      '',
    ].join('\n'),
  );
  return file;
}

before(async () => {
  apache2 = requireProgram('apache2', 'apache2');
  requireRoot('the foreign-config websites test');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-webforeign-'));
  const cfg = loadAgentConfig(
    { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
    {},
  );
  agent = await startAgent(cfg, quietLogger);
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  await m.waitForState(HOST, 'online');
  const list = await call('list websites', {});
  assert.ok(list.ok, JSON.stringify(list));
  port = portOf(list.data.url);
  assert.ok((await call('create website', { domain: 'alpha.test' })).ok);
  assert.equal((await fetchSite(port, 'alpha.test')).status, 200);
});

after(async () => {
  await m?.close();
  await agent?.stop();
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
});

describe('a foreign file that passes apache2 -t but cannot start', () => {
  test('create, disable and delete are refused naming the file; alpha.test is served throughout', async () => {
    const logDir = path.join(sandbox, 'a-directory');
    await fsp.mkdir(logDir);
    const foreign = await dropForeign('zz-by-hand.conf', logDir);
    // The repro's premise: Apache's own checker accepts the file.
    execFileSync(apache2, ['-t', '-f', conf('apache2.conf')], { stdio: 'pipe' });
    const pid = await apachePid();
    const watch = watchServed('alpha.test');
    try {
      const r = await call('create website', { domain: 'beta.test' });
      assert.equal(!r.ok && r.error.code, 'failed-precondition', JSON.stringify(r));
      const msg = !r.ok ? r.error.message : '';
      assert.ok(msg.includes(`${foreign} line 3`), msg);
      assert.ok(msg.includes(`the ErrorLog ${logDir} is a directory`), msg);
      assert.deepEqual(!r.ok && (r.error.details as { faultyFiles?: string[] }).faultyFiles, [foreign]);

      for (const event of ['disable website', 'delete website'] as const) {
        const d = await call(event, { domain: 'alpha.test' });
        assert.equal(!d.ok && d.error.code, 'failed-precondition', `${event}: ${JSON.stringify(d)}`);
        assert.ok(!d.ok && d.error.message.includes(foreign), event);
      }
    } finally {
      const failures = await watch.stop();
      assert.deepEqual(
        failures,
        [],
        `alpha.test was not served ${failures.length} of ${watch.count()} times`,
      );
    }
    assert.equal(await apachePid(), pid, 'Apache was never restarted');
    assert.equal((await fetchSite(port, 'beta.test')).status, 404);
    await assert.rejects(fsp.lstat(conf('sites-available/beta.test.conf')), 'no vhost left behind');
    await assert.rejects(fsp.lstat(conf('sites-enabled/beta.test.conf')));
    await assert.rejects(fsp.lstat(path.join(sandbox, 'var/www/beta.test')), 'no site tree left behind');
    assert.ok(await fsp.lstat(conf('sites-enabled/alpha.test.conf')), 'alpha.test still enabled');

    // Once the admin fixed the file, the same change goes through.
    await fsp.rm(foreign);
    const again = await call('create website', { domain: 'beta.test' });
    assert.ok(again.ok, JSON.stringify(again));
    assert.equal((await fetchSite(port, 'beta.test')).status, 200);
  });

  test('a log the check cannot foresee: the reload kills Apache, the reply names the file, fixing it brings Apache back', async () => {
    // A dangling symlink whose target's directory does not exist: creatable-looking from its own
    // directory, yet Apache's open() fails at the restart.
    const dangling = path.join(sandbox, 'dangling.log');
    await fsp.symlink(path.join(sandbox, 'no-such-dir/x.log'), dangling);
    const foreign = await dropForeign('zz-dangling.conf', dangling);
    execFileSync(apache2, ['-t', '-f', conf('apache2.conf')], { stdio: 'pipe' });
    const r = await call('create website', { domain: 'gamma.test' });
    assert.equal(!r.ok && r.error.code, 'failed-precondition', JSON.stringify(r));
    const msg = !r.ok ? r.error.message : '';
    assert.match(msg, /^Apache did not reload: /);
    assert.match(msg, /Apache did not come back/);
    assert.ok(msg.includes(`named in ${foreign}`), msg);
    await assert.rejects(fsp.lstat(conf('sites-enabled/gamma.test.conf')), 'PonIO rolled its change back');

    // The admin removes the file; PonIO's next change starts Apache again and every site is back.
    await fsp.rm(foreign);
    const again = await call('create website', { domain: 'gamma.test' });
    assert.ok(again.ok, JSON.stringify(again));
    for (const host of ['alpha.test', 'beta.test', 'gamma.test'])
      assert.equal((await fetchSite(port, host)).status, 200, host);
  });
});
