// Both Debian packages on booted Debian 12 systems, the panel and an agent each in a container of
// its own, talking to each other over the test's LAN: `apt install ./ponio-panel_*.deb` starts
// the hardened ponio-panel.service as user ponio; `apt install ./ponio-agent_*.deb` lays out the
// agent (enabled, not started before enrollment), `ponio-agent enroll` with the line that panel
// prints enrolls the host and the panel drives it; newer packages upgrade both in place (the
// conffiles the admin and `ponio-agent enroll` edited are kept, the services restart on the new
// files, calls keep working); `apt purge` leaves both file systems as they were before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { ROOT } from '../helpers/agent-process.ts';
import { tempDir } from '../helpers/tmp.ts';
import {
  bootContainer,
  createLan,
  poweroffAll,
  type Container,
  type Lan,
} from '../helpers/booted/container.ts';
import {
  buildRelease,
  containerPanelApi,
  copyRelease,
  diffLists,
  fileList,
  mysqlState,
  panelCli,
  provideNodejs,
  runningPid,
  unitState,
  waitActive,
  waitApi,
  waitHostOnline,
  DIST_IN,
  type AddedHost,
} from '../helpers/booted/ponio.ts';

const HOST = 'debhost';
const CONFIG = '/etc/ponio-panel/panel.json';
let lan: Lan | undefined;
let panelC: Container | undefined;
let agentC: Container | undefined;
let dist: string;
let token = '';
let panelPristine: string[] = [];
let agentPristine: string[] = [];
let agentDbs: string[] = [];
const api = (): ReturnType<typeof containerPanelApi> => {
  assert.ok(panelC);
  return containerPanelApi(panelC, () => token);
};

/** `node scripts/deb.mjs`: the same build packaged again as a newer version (agent, panel). */
function repackage(version: string): Promise<string[]> {
  const out = tempDir('ponio-deb-');
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/deb.mjs'), dist, version, out],
      { timeout: 120_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim().split('\n')),
    );
  });
}

const mainPid = runningPid;

before(async () => {
  requireRoot('the booted tier');
  lan = createLan();
  [dist, panelC, agentC] = await Promise.all([
    buildRelease(),
    bootContainer(lan, { name: 'debpanel' }),
    bootContainer(lan, { name: 'debagent' }),
  ]);
  for (const c of [panelC, agentC]) {
    await provideNodejs(c);
    copyRelease(c, dist, 'deb');
  }
  [panelPristine, agentPristine, agentDbs] = await Promise.all([
    fileList(panelC),
    fileList(agentC),
    mysqlState(agentC),
  ]);
});

after(async () => {
  await poweroffAll();
  lan?.destroy();
});

test('apt install ./ponio-panel_*.deb: ponio-panel.service runs as user ponio and serves its API', async () => {
  assert.ok(panelC);
  const deb = (await panelC.ok('sh', ['-c', `ls ${DIST_IN}/deb/ponio-panel_*.deb`])).trim();
  const install = await panelC.exec('apt-get', ['install', '-y', '--no-install-recommends', deb], {
    timeoutMs: 180_000,
  });
  assert.equal(install.code, 0, install.stderr + install.stdout);
  assert.equal((await panelC.ok('systemctl', ['is-enabled', 'ponio-panel.service'])).trim(), 'enabled');
  await waitActive(panelC, 'ponio-panel.service');
  assert.equal(
    (await panelC.ok('ps', ['-o', 'user=', '-p', await mainPid(panelC, 'ponio-panel')])).trim(),
    'ponio',
  );
  assert.equal(
    (await panelC.ok('stat', ['-c', '%U:%G %a', '/etc/ponio-panel', CONFIG, '/var/lib/ponio-panel'])).trim(),
    'root:ponio 750\nroot:ponio 640\nponio:ponio 700',
  );
  // What docs/install.md tells the admin to do: set the public URL (it goes into the enroll
  // command) in the conffile, restart.
  const conf = JSON.parse(await panelC.ok('cat', [CONFIG])) as Record<string, unknown>;
  conf.publicUrl = `https://${panelC.ip}:8443`;
  panelC.writeFile(CONFIG, `${JSON.stringify(conf, null, 2)}\n`, 0o640);
  await panelC.ok('systemctl', ['restart', 'ponio-panel.service']);
  await waitActive(panelC, 'ponio-panel.service');
  token =
    (await panelCli(panelC, ['token', 'create', 'booted', '--role', 'admin'], CONFIG))
      .trim()
      .split('\n')
      .pop() ?? '';
  assert.ok(token.length > 20, token);
  await waitApi(api(), '/hosts');
});

test('apt install ./ponio-agent_*.deb, ponio-agent enroll with the line the packaged panel prints; the panel drives the host', async () => {
  assert.ok(panelC && agentC);
  const deb = (await agentC.ok('sh', ['-c', `ls ${DIST_IN}/deb/ponio-agent_*_all.deb`])).trim();
  const install = await agentC.exec('apt-get', ['install', '-y', '--no-install-recommends', deb], {
    timeoutMs: 180_000,
  });
  assert.equal(install.code, 0, install.stderr + install.stdout);
  assert.match(install.stdout, /enroll this host with the command the panel shows/);
  assert.equal((await agentC.ok('systemctl', ['is-enabled', 'ponio-agent.service'])).trim(), 'enabled');
  assert.equal(
    (await agentC.ok('systemctl', ['is-enabled', 'ponio-firewall-restore.service'])).trim(),
    'enabled',
  );
  // Not enrolled: the unit's condition keeps it from starting (and from a restart loop).
  assert.notEqual(await unitState(agentC, 'ponio-agent.service'), 'active');
  assert.equal(
    (await agentC.ok('stat', ['-c', '%a', '/etc/ponio-agent', '/var/lib/ponio-agent'])).trim(),
    '700\n700',
  );
  assert.match(await agentC.ok('ponio-agent', ['--version']), /\d+\.\d+\.\d+/);

  const add = await api()<{ data: AddedHost }>('POST', '/hosts', {
    name: HOST,
    address: agentC.ip,
    port: 7443,
  });
  assert.equal(add.status, 201, add.text);
  const line = add.body.data.command;
  assert.ok(line.startsWith(`ponio-agent enroll --panel https://${panelC.ip}:8443 `), line);
  const enroll = await agentC.exec('sh', ['-c', `${line} --listen 0.0.0.0:7443`]);
  assert.equal(enroll.code, 0, enroll.stderr + enroll.stdout);
  await agentC.ok('systemctl', ['restart', 'ponio-agent.service']);
  await waitActive(agentC, 'ponio-agent.service');
  await waitHostOnline(api(), HOST);
  const site = await api()('POST', `/hosts/${HOST}/websites`, { domain: 'deb.test' });
  assert.equal(site.status, 201, site.text);
  const page = await agentC.ok('curl', ['-fsS', '-H', 'Host: deb.test', 'http://127.0.0.1/']);
  assert.ok(page.includes('ponio-placeholder deb.test'), page.slice(0, 300));
});

test('upgrade in place: newer packages keep both conffiles, restart both services, calls keep working', async () => {
  assert.ok(panelC && agentC);
  const panelConf = await panelC.ok('cat', [CONFIG]);
  assert.match(panelConf, /"publicUrl"/);
  const agentConf = await agentC.ok('cat', ['/etc/ponio-agent/config.json']);
  assert.match(agentConf, /"listen": "0\.0\.0\.0:7443"/);
  const [panelPid, agentPid] = [await mainPid(panelC, 'ponio-panel'), await mainPid(agentC, 'ponio-agent')];

  // The same build as version 0.1.0+1 (newer to dpkg).
  const newer = await repackage('0.1.0+1');
  for (const [c, name] of [
    [panelC, 'ponio-panel'],
    [agentC, 'ponio-agent'],
  ] as const) {
    const file = newer.find((f) => path.basename(f).startsWith(`${name}_`));
    assert.ok(file, newer.join(' '));
    c.writeFile(`/root/ponio-dist/${name}-newer.deb`, readFileSync(file));
    const up = await c.exec('apt-get', ['install', '-y', `/root/ponio-dist/${name}-newer.deb`], {
      timeoutMs: 180_000,
    });
    assert.equal(up.code, 0, up.stderr + up.stdout);
    assert.equal((await c.ok('dpkg-query', ['-W', '-f=${Version}', name])).trim(), '0.1.0+1');
  }
  assert.equal(await panelC.ok('cat', [CONFIG]), panelConf, "the admin's panel config is kept");
  assert.equal(
    await agentC.ok('cat', ['/etc/ponio-agent/config.json']),
    agentConf,
    'the enrolled config is kept',
  );
  await waitActive(panelC, 'ponio-panel.service');
  await waitActive(agentC, 'ponio-agent.service');
  assert.notEqual(await mainPid(panelC, 'ponio-panel'), panelPid, 'the upgrade restarted the panel');
  assert.notEqual(await mainPid(agentC, 'ponio-agent'), agentPid, 'the upgrade restarted the agent');
  await waitApi(api(), '/hosts');
  await waitHostOnline(api(), HOST);
  const list = await api()('GET', `/hosts/${HOST}/websites`);
  assert.equal(list.status, 200, list.text);
  assert.match(list.text, /deb\.test/, 'the panel kept its data, the host its website');
});

test('apt purge: both hosts are left with exactly the files (and MariaDB accounts) they had before', async () => {
  assert.ok(panelC && agentC);
  // What the agent made through the panel is the admin's data, not the package's: delete it first.
  const del = await api()('DELETE', `/hosts/${HOST}/websites/deb.test?removeFiles=true`);
  assert.equal(del.status, 200, del.text);
  const a = await agentC.exec('apt-get', ['purge', '-y', 'ponio-agent'], { timeoutMs: 180_000 });
  assert.equal(a.code, 0, a.stderr + a.stdout);
  assert.notEqual(await unitState(agentC, 'ponio-agent.service'), 'active');
  assert.deepEqual(diffLists(agentPristine, await fileList(agentC)), { added: [], removed: [] });
  assert.deepEqual(await mysqlState(agentC), agentDbs);

  const p = await panelC.exec('apt-get', ['purge', '-y', 'ponio-panel'], { timeoutMs: 180_000 });
  assert.equal(p.code, 0, p.stderr + p.stdout);
  assert.notEqual(await unitState(panelC, 'ponio-panel.service'), 'active');
  assert.doesNotMatch(await panelC.ok('cat', ['/etc/passwd', '/etc/group']), /^ponio:/m);
  assert.deepEqual(diffLists(panelPristine, await fileList(panelC)), { added: [], removed: [] });
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
