// Issue 16 item 9: a full disk (ENOSPC) or a read-only file system (EROFS) answers `unavailable`
// naming the path and the condition — not `internal` "see the agent log" — and leaves the host as
// it was. The sandbox of a real agent (in-process, agent/main.ts, with its private Apache and
// proftpd) lives on a small tmpfs this test mounts (and unmounts in after()); the test fills it,
// or remounts it read-only, and calls create website / create ftp user over the real RPC path.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { resourceShortage } from '../../agent/os/resource-fault.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { fetchSite, hashTree, portOf } from '../helpers/websites.ts';

const HOST = 'full1';
let pki: TestPki;
let agent: RunningAgent | undefined;
let m: ConnectionManager | undefined;
let outer: string;
let sandbox: string;
let mounted = false;
let port: number;
let docroot: string;

function call<E extends EventName>(event: E, params: RequestIn<E>) {
  assert.ok(m);
  return m.call(HOST, event, params);
}

/** Everything the two modules may write (logs only by presence: Apache appends to them). */
const hostDigest = (): Promise<string> =>
  Promise.all(
    ['etc', 'var/www', 'srv'].map((d) =>
      hashTree(
        path.join(sandbox, d),
        () => false,
        (rel) => /(^|\/)logs?\/|\.log$/.test(rel),
      ),
    ),
  ).then((parts) => parts.join(':'));

/** Fills the tmpfs until the kernel says ENOSPC (bounded by its size). */
async function fill(): Promise<void> {
  const fh = await fsp.open(path.join(sandbox, 'filler'), 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let i = 0; i < 1024; i++) await fh.write(chunk);
    assert.fail('the 16 MiB tmpfs did not fill up');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    await fh.close();
  }
  const st = await fsp.statfs(sandbox);
  assert.equal(st.bavail, 0, 'the file system is full');
}

before(async () => {
  requireRoot('the resource-fault test (it mounts a tmpfs)');
  requireProgram('mount', 'mount');
  requireProgram('apache2', 'apache2');
  requireProgram('proftpd', 'proftpd-core');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  outer = mkdtempSync(path.join(os.tmpdir(), 'ponio-full-'));
  await fsp.chmod(outer, 0o711); // Apache's workers (www-data) pass through to the docroots
  sandbox = path.join(outer, 'sb');
  await fsp.mkdir(sandbox);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0755', 'ponio-test-full', sandbox]);
  mounted = true;
  const cfg = {
    ...loadAgentConfig(
      { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
      {},
    ),
    modules: { mysql: false, firewall: false },
  };
  agent = await startAgent(cfg, quietLogger);
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  await m.waitForState(HOST, 'online');
  const site = await call('create website', { domain: 'alpha.test' });
  assert.ok(site.ok, JSON.stringify(site));
  port = portOf(site.data.url);
  docroot = site.data.docroot ?? '';
});

after(async () => {
  await m?.close();
  await agent?.stop();
  if (mounted) execFileSync('umount', ['-l', sandbox]);
  if (outer) await fsp.rm(outer, { recursive: true, force: true });
});

describe('resource faults', () => {
  test('a full disk: create website and create ftp user answer unavailable naming the path; nothing changed', async () => {
    await fill();
    try {
      assert.match(await resourceShortage([path.join(sandbox, 'etc')]), /no space left on device \(ENOSPC\)/);
      const before = await hostDigest();

      const w = await call('create website', { domain: 'beta.test' });
      assert.equal(!w.ok && w.error.code, 'unavailable', JSON.stringify(w));
      const wm = !w.ok ? w.error.message : '';
      assert.match(wm, /no space is left on the device writing \/\S+ \(ENOSPC\)/, wm);
      const wPath = !w.ok ? (w.error.details as { path?: string }).path : undefined;
      assert.ok(wPath?.startsWith(`${sandbox}/`), `names a path in the sandbox: ${wPath}`);
      assert.equal(!w.ok && (w.error.details as { condition?: string }).condition, 'ENOSPC');

      const f = await call('create ftp user', {
        username: 'bob',
        password: 'correct horse 1',
        home: docroot,
      });
      assert.equal(!f.ok && f.error.code, 'unavailable', JSON.stringify(f));
      assert.match(!f.ok ? f.error.message : '', /no space is left on the device writing \/\S+ \(ENOSPC\)/);

      assert.equal(await hostDigest(), before, 'the host is unchanged');
      assert.equal((await fetchSite(port, 'alpha.test')).status, 200, 'the other site is served');
      assert.equal((await fetchSite(port, 'beta.test')).status, 404);
      const users = await call('list ftp users', {});
      assert.ok(users.ok && !users.data.users.some((u) => u.username === 'bob'), JSON.stringify(users));
    } finally {
      await fsp.rm(path.join(sandbox, 'filler'), { force: true });
    }
    // Space again: the same calls go through.
    const w = await call('create website', { domain: 'beta.test' });
    assert.ok(w.ok, JSON.stringify(w));
    const f = await call('create ftp user', { username: 'bob', password: 'correct horse 1', home: docroot });
    assert.ok(f.ok, JSON.stringify(f));
  });

  test('a read-only file system: unavailable naming the path and EROFS; nothing changed', async () => {
    // Read-only tmpfs mounts where the two creates write: the new site's tree and the FTP root.
    const roSite = path.join(sandbox, 'var/www/gamma.test');
    const roFtp = path.join(sandbox, 'srv/ftp');
    await fsp.mkdir(roSite);
    await fsp.mkdir(roFtp, { recursive: true });
    const before = await hostDigest();
    const ro: string[] = [];
    try {
      for (const d of [roSite, roFtp]) {
        // owned by www-data like the sandbox's FTP root (FTP users never act as root)
        execFileSync('mount', [
          '-t',
          'tmpfs',
          '-o',
          'size=1m,mode=0755,uid=33,gid=33,ro',
          'ponio-test-ro',
          d,
        ]);
        ro.push(d);
      }
      assert.match(await resourceShortage([roSite]), /the file system is read-only \(EROFS\)/);
      const w = await call('create website', { domain: 'gamma.test' });
      assert.equal(!w.ok && w.error.code, 'unavailable', JSON.stringify(w));
      assert.match(
        !w.ok ? w.error.message : '',
        /the file system is read-only writing \/\S+gamma\.test\S* \(EROFS\)/,
      );
      const home = path.join(roFtp, 'carol');
      const f = await call('create ftp user', { username: 'carol', password: 'correct horse 1', home });
      assert.equal(!f.ok && f.error.code, 'unavailable', JSON.stringify(f));
      assert.match(!f.ok ? f.error.message : '', /the file system is read-only writing \/\S+ \(EROFS\)/);
    } finally {
      for (const d of ro.reverse()) execFileSync('umount', [d]);
    }
    assert.equal(await hostDigest(), before, 'the host is unchanged');
    assert.equal((await fetchSite(port, 'alpha.test')).status, 200);
    assert.equal((await fetchSite(port, 'gamma.test')).status, 404);
    await fsp.rm(roSite, { recursive: true });
  });
});
