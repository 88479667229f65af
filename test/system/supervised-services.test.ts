// Issue 16 item 10: the sandbox agent restarts a crashed private Apache, proftpd or MariaDB
// (bounded retries with backoff) and reports each service's state in its hello, which it sends
// again when the state changes. A real agent (in-process, agent/main.ts) with its real private
// services; the test SIGKILLs them (Apache: its whole process group, as a crash would leave no
// worker) and checks they come back on the same port and calls succeed, then crashes MariaDB more
// often than the bound and checks it is reported `failed` and calls answer `unavailable` saying so.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { isAlive } from '../../agent/os/process.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { ServiceStatus } from '../../shared/protocol/hello.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { fetchSite, portOf } from '../helpers/websites.ts';

const HOST = 'sup1';
let pki: TestPki;
let agent: RunningAgent | undefined;
let m: ConnectionManager | undefined;
let sandbox: string;
let webPort: number;
let ftpPort: number;

function call<E extends EventName>(event: E, params: RequestIn<E>) {
  assert.ok(m);
  return m.call(HOST, event, params);
}

const pidIn = (rel: string): number => Number(readFileSync(path.join(sandbox, rel), 'utf8').trim());

/** The service state of `module` in the panel's latest hello from the agent. */
function serviceOf(module: string): ServiceStatus | undefined {
  return m?.status(HOST)?.hello?.modules.find((x) => x.name === module)?.service;
}

/** Polls `check` every 100 ms until it returns true (bounded: `timeoutMs`). */
async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** proftpd's "220 …" banner on its port (the daemon answers). */
const ftpBanner = (): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: ftpPort });
    const done = (v: boolean): void => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(2000, () => done(false));
    s.once('data', (d) => done(d.toString().startsWith('220')));
    s.once('error', () => done(false));
  });

const killed = (pid: number): Promise<void> => until(`pid ${pid} to exit`, () => !isAlive(pid), 10_000);

before(async () => {
  requireRoot('the supervised-services test');
  requireProgram('apache2', 'apache2');
  requireProgram('proftpd', 'proftpd-core');
  requireProgram('mariadbd', 'mariadb-server');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-sup-'));
  const cfg = {
    ...loadAgentConfig(
      { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
      {},
    ),
    modules: { firewall: false },
  };
  agent = await startAgent(cfg, quietLogger);
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  await m.waitForState(HOST, 'online', 15_000);
  for (const mod of ['websites', 'ftp', 'mysql'])
    assert.deepEqual(
      serviceOf(mod),
      {
        service: { websites: 'apache2', ftp: 'proftpd', mysql: 'mariadb' }[mod],
        state: 'running',
        restarts: 0,
      },
      `${mod}: ${JSON.stringify(m.status(HOST)?.hello)}`,
    );
  const site = await call('create website', { domain: 'alpha.test' });
  assert.ok(site.ok, JSON.stringify(site));
  webPort = portOf(site.data.url);
  ftpPort = (JSON.parse(readFileSync(path.join(sandbox, 'run/proftpd.json'), 'utf8')) as { port: number })
    .port;
});

after(async () => {
  await m?.close();
  await agent?.stop();
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
});

describe('supervised sandbox services', () => {
  test('a SIGKILLed MariaDB is restarted; mysql calls succeed again; the hello says it was restarted', async () => {
    assert.ok((await call('create database', { name: 'before_crash' })).ok);
    const pid = pidIn('run/mysqld.pid');
    process.kill(pid, 'SIGKILL');
    await killed(pid);
    await until('mysql calls to succeed again', async () => (await call('list databases', {})).ok);
    const list = await call('list databases', {});
    assert.ok(list.ok && list.data.databases.some((d) => d.name === 'before_crash'), JSON.stringify(list));
    assert.notEqual(pidIn('run/mysqld.pid'), pid, 'a new mariadbd');
    await until('the hello to report the restart', () => serviceOf('mysql')?.restarts === 1);
    assert.equal(serviceOf('mysql')?.state, 'running');
    assert.match(serviceOf('mysql')?.detail ?? '', /killed by SIGKILL/);
  });

  test('a SIGKILLed Apache (the whole process group) is restarted on its port; sites are served again', async () => {
    const pid = pidIn('run/apache2/apache2.pid');
    process.kill(-pid, 'SIGKILL');
    await killed(pid);
    await until(
      'alpha.test to be served again',
      async () => (await fetchSite(webPort, 'alpha.test')).status === 200,
    );
    assert.notEqual(pidIn('run/apache2/apache2.pid'), pid);
    await until('the hello to report the restart', () => serviceOf('websites')?.restarts === 1);
    // And changes work on the restarted Apache.
    const beta = await call('create website', { domain: 'beta.test' });
    assert.ok(beta.ok, JSON.stringify(beta));
    assert.equal((await fetchSite(webPort, 'beta.test')).status, 200);
  });

  test('a SIGKILLed proftpd is restarted on the same port', async () => {
    assert.ok(await ftpBanner(), 'proftpd answers before');
    const pid = pidIn('run/proftpd.pid');
    process.kill(pid, 'SIGKILL');
    await killed(pid);
    await until('proftpd to answer again on its port', ftpBanner);
    await until('the hello to report the restart', () => serviceOf('ftp')?.restarts === 1);
    assert.equal(serviceOf('ftp')?.state, 'running');
  });

  test('past the retry bound MariaDB is reported failed and calls answer unavailable saying so', async () => {
    // The bound is 3 restarts within 10 minutes; the first test used one.
    for (let i = 2; i <= 3; i++) {
      const pid = pidIn('run/mysqld.pid');
      process.kill(pid, 'SIGKILL');
      await killed(pid);
      await until(
        `restart ${i}`,
        () => serviceOf('mysql')?.restarts === i && serviceOf('mysql')?.state === 'running',
      );
    }
    const pid = pidIn('run/mysqld.pid');
    process.kill(pid, 'SIGKILL');
    await killed(pid);
    await until('the hello to report mariadb failed', () => serviceOf('mysql')?.state === 'failed');
    const s = serviceOf('mysql');
    assert.match(s?.detail ?? '', /^mariadb died 4 times within 10 min and is no longer restarted/);
    const r = await call('list databases', {});
    assert.equal(!r.ok && r.error.code, 'unavailable', JSON.stringify(r));
    assert.match(!r.ok ? r.error.message : '', /no longer restarted/);
    // Given up means given up: nothing starts it behind the admin's back.
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(!isAlive(pid));
    assert.equal(serviceOf('mysql')?.state, 'failed');
    // The other services are unaffected.
    assert.equal((await fetchSite(webPort, 'alpha.test')).status, 200);
  });
});
