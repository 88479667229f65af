// The ponio-agent Debian package on a booted Debian 12: `apt install ./ponio-agent_*.deb` lays
// out the program and its units (enabled, not started before enrollment), `ponio-agent enroll`
// with the panel's line enrolls the host, the service serves the panel; installing a newer
// package upgrades in place (the enrolled config, a conffile edited by enroll, is kept; the
// service restarts on the new files and calls keep working); `apt purge` leaves the file system
// as it was before the install.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { ROOT } from '../helpers/agent-process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { bootContainer, createLan, type Container, type Lan } from '../helpers/booted/container.ts';
import {
  buildRelease,
  copyRelease,
  diffLists,
  fileList,
  provideNodejs,
  unitState,
  waitActive,
  DIST_IN,
  type AddedHost,
} from '../helpers/booted/ponio.ts';

const HOST = 'debhost';
let lan: Lan | undefined;
let t: TestPanel | undefined;
let c: Container | undefined;
let dist: string;

/** `node scripts/deb.mjs`: the same build packaged again as a newer version. */
function repackage(version: string): Promise<string> {
  const out = tempDir('ponio-deb-');
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/deb.mjs'), dist, version, out, '--agent-only'],
      { timeout: 120_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    );
  });
}

before(async () => {
  requireRoot('the booted tier');
  lan = createLan();
  [t, dist, c] = await Promise.all([
    startTestPanel({ host: lan.hostIp }),
    buildRelease(),
    bootContainer(lan, { name: 'deb1' }),
  ]);
});

after(async () => {
  await c?.poweroff();
  await t?.close();
  lan?.destroy();
});

test('apt install ./ponio-agent_*.deb, ponio-agent enroll, upgrade in place keeping the config, purge leaves nothing', async () => {
  assert.ok(t && c);
  await provideNodejs(c);
  copyRelease(c, dist, 'deb');
  const pristine = await fileList(c);

  const deb = (await c.ok('sh', ['-c', `ls ${DIST_IN}/deb/ponio-agent_*_all.deb`])).trim();
  const install = await c.exec('apt-get', ['install', '-y', '--no-install-recommends', deb], {
    timeoutMs: 180_000,
  });
  assert.equal(install.code, 0, install.stderr + install.stdout);
  assert.match(install.stdout, /enroll this host with the command the panel shows/);
  assert.equal((await c.ok('systemctl', ['is-enabled', 'ponio-agent.service'])).trim(), 'enabled');
  assert.equal((await c.ok('systemctl', ['is-enabled', 'ponio-firewall-restore.service'])).trim(), 'enabled');
  // Not enrolled: the unit's condition keeps it from starting (and from a restart loop).
  assert.notEqual(await unitState(c, 'ponio-agent.service'), 'active');
  assert.equal(
    (await c.ok('stat', ['-c', '%a', '/etc/ponio-agent', '/var/lib/ponio-agent'])).trim(),
    '700\n700',
  );
  assert.match(await c.ok('ponio-agent', ['--version']), /\d+\.\d+\.\d+/);

  const add = await t.request<{ data: AddedHost }>('POST', '/api/v1/hosts', {
    body: { name: HOST, address: c.ip, port: 7443 },
  });
  assert.equal(add.status, 201, add.text);
  const enroll = await c.exec('ponio-agent', [
    'enroll',
    '--panel',
    t.url,
    '--token',
    add.body.data.token,
    '--ca-pin',
    add.body.data.caPin,
    '--listen',
    '0.0.0.0:7443',
  ]);
  assert.equal(enroll.code, 0, enroll.stderr + enroll.stdout);
  await c.ok('systemctl', ['restart', 'ponio-agent.service']);
  await waitActive(c, 'ponio-agent.service');
  await t.panel.ctx.hosts.manager.waitForState(HOST, 'online', 30_000);
  const list = await t.request('GET', `/api/v1/hosts/${HOST}/websites`);
  assert.equal(list.status, 200, list.text);

  // Upgrade: the same build as version 0.1.0+1 (newer to dpkg).
  const config = await c.ok('cat', ['/etc/ponio-agent/config.json']);
  assert.match(config, /"listen": "0\.0\.0\.0:7443"/);
  const pidBefore = (await c.ok('systemctl', ['show', '-p', 'MainPID', '--value', 'ponio-agent'])).trim();
  const newer = (await repackage('0.1.0+1')).split('\n')[0] ?? '';
  c.writeFile('/root/ponio-dist/newer.deb', readFileSync(newer));
  const up = await c.exec('apt-get', ['install', '-y', '/root/ponio-dist/newer.deb'], { timeoutMs: 180_000 });
  assert.equal(up.code, 0, up.stderr + up.stdout);
  assert.equal((await c.ok('dpkg-query', ['-W', '-f=${Version}', 'ponio-agent'])).trim(), '0.1.0+1');
  assert.equal(await c.ok('cat', ['/etc/ponio-agent/config.json']), config, 'the enrolled config is kept');
  await waitActive(c, 'ponio-agent.service');
  const pidAfter = (await c.ok('systemctl', ['show', '-p', 'MainPID', '--value', 'ponio-agent'])).trim();
  assert.notEqual(pidAfter, pidBefore, 'the upgrade restarted the service');
  await t.panel.ctx.hosts.manager.waitForState(HOST, 'online', 30_000);
  const again = await t.request('POST', `/api/v1/hosts/${HOST}/ping`);
  assert.equal(again.status, 200, again.text);

  const purge = await c.exec('apt-get', ['purge', '-y', 'ponio-agent'], { timeoutMs: 180_000 });
  assert.equal(purge.code, 0, purge.stderr + purge.stdout);
  assert.notEqual(await unitState(c, 'ponio-agent.service'), 'active');
  assert.deepEqual(diffLists(pristine, await fileList(c)), { added: [], removed: [] });
});

test('lintian: both packages are clean but for the overrides they ship (each with its reason)', async () => {
  requireProgram('lintian', 'lintian');
  const debs = readdirSync(path.join(dist, 'deb')).filter((f) => f.endsWith('.deb'));
  assert.deepEqual(debs.map((f) => f.replace(/_.*/, '')).sort(), ['ponio-agent', 'ponio-panel']);
  const r = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile(
      'lintian',
      [
        '--fail-on',
        'warning,error',
        '--tag-display-limit',
        '0',
        ...debs.map((f) => path.join(dist, 'deb', f)),
      ],
      { timeout: 240_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, out: stdout + stderr }),
    );
  });
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /^[EW]: /m, r.out);
});
