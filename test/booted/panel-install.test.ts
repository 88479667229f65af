// Both installers on booted Debian 12 systems, panel and agent each in a container of its own:
// deploy/install-panel.sh lays out the hardened ponio-panel.service running as user ponio; the
// one-line install that panel serves (curl … | sh) installs and enrolls the agent on the other
// container, whose ponio-agent.service the panel then drives; re-running both installers
// upgrades in place (config, data, enrollment kept; calls keep working); --uninstall removes
// every file the installers and the services added (the file list before and after match).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { requireRoot } from '../helpers/programs.ts';
import { bootContainer, createLan, type Container, type Lan } from '../helpers/booted/container.ts';
import {
  buildRelease,
  copyRelease,
  diffLists,
  fileList,
  unitState,
  waitActive,
  type AddedHost,
} from '../helpers/booted/ponio.ts';

let lan: Lan | undefined;
let panelC: Container | undefined;
let agentC: Container | undefined;
let dist: string;
let token = '';
let panelPristine: string[] = [];
let agentPristine: string[] = [];

/**
 * The panel's REST API from the test process. The certificate is not checked here: this test is
 * about installing; enrollment (which pins the panel's CA) is what checks it.
 */
function api<T = any>(
  method: string,
  p: string,
  body?: unknown,
): Promise<{ status: number; body: T; text: string }> {
  assert.ok(panelC);
  return new Promise((resolve, reject) => {
    const req = https.request(
      `https://${panelC!.ip}:8443/api/v1${p}`,
      {
        method,
        rejectUnauthorized: false,
        timeout: 30_000,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T, text });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function waitOnline(host: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    const r = await api<{ data: { status?: string; state?: string } }>('GET', `/hosts/${host}`);
    last = r.text;
    if (/"(status|state|connection)":"online"/.test(r.text)) return;
    await new Promise((res) => setTimeout(res, 500));
  }
  assert.fail(`host ${host} not online: ${last}`);
}

before(async () => {
  requireRoot('the booted tier');
  lan = createLan();
  [dist, panelC, agentC] = await Promise.all([
    buildRelease(),
    bootContainer(lan, { name: 'panel' }),
    bootContainer(lan, { name: 'agent2' }),
  ]);
  panelPristine = await fileList(panelC);
  agentPristine = await fileList(agentC);
});

after(async () => {
  await Promise.all([panelC?.poweroff(), agentC?.poweroff()]);
  lan?.destroy();
});

test('install-panel.sh: ponio-panel.service runs as user ponio; the one line it serves installs and enrolls an agent', async () => {
  assert.ok(panelC && agentC);
  const dir = copyRelease(panelC, dist, 'panel');
  const url = `https://${panelC.ip}:8443`;
  const inst = await panelC.exec('sh', [`${dir}/install-panel.sh`, '--public-url', url], {
    timeoutMs: 180_000,
  });
  assert.equal(inst.code, 0, inst.stderr + inst.stdout);
  await waitActive(panelC, 'ponio-panel.service');
  const pid = (await panelC.ok('systemctl', ['show', '-p', 'MainPID', '--value', 'ponio-panel'])).trim();
  assert.equal((await panelC.ok('ps', ['-o', 'user=', '-p', pid])).trim(), 'ponio');
  assert.equal((await panelC.ok('stat', ['-c', '%U %a', '/var/lib/ponio-panel'])).trim(), 'ponio 700');

  // The admin's first token, made with the CLI as the service user (so the database stays its).
  const made = await panelC.ok('runuser', [
    '-u',
    'ponio',
    '--',
    'ponio-panel',
    'token',
    'create',
    'booted',
    '--role',
    'admin',
    '--config',
    '/etc/ponio-panel/panel.json',
  ]);
  token = made.trim().split('\n').pop() ?? '';
  assert.ok(token.length > 20, made);
  // The panel answers on its LAN address (ready: its HTTPS port is up once the unit is active).
  let hosts = { status: 0, text: '' };
  for (let i = 0; i < 40 && hosts.status !== 200; i++) {
    hosts = await api('GET', '/hosts').catch(() => ({ status: 0, text: '', body: null }));
    if (hosts.status !== 200) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(hosts.status, 200, hosts.text);

  const add = await api<{ data: AddedHost }>('POST', '/hosts', {
    name: 'oneline',
    address: agentC.ip,
    port: 7443,
  });
  assert.equal(add.status, 201, add.text);
  const line = add.body.data.installCommand;
  assert.ok(line, 'the installed panel serves its agent release');
  assert.ok(
    line.startsWith(`curl -fsS --pinnedpubkey sha256//`) &&
      line.includes(`${url}/agent/install.sh | sh -s --`),
    line,
  );
  const one = await agentC.exec('bash', ['-c', line], { timeoutMs: 180_000 });
  assert.equal(one.code, 0, one.stderr + one.stdout);
  assert.match(one.stdout, /Enrolled as host oneline/);
  await waitActive(agentC, 'ponio-agent.service');
  await waitOnline('oneline');
  const ping = await api<{ data: { pong: boolean } }>('POST', '/hosts/oneline/ping');
  assert.equal(ping.status, 200, ping.text);
  assert.equal(ping.body.data.pong, true);
  const site = await api('POST', '/hosts/oneline/websites', { domain: 'oneline.test' });
  assert.equal(site.status, 201, site.text);
});

test('upgrade in place: both installers again; config, data and enrollment kept, services restarted, calls work', async () => {
  assert.ok(panelC && agentC);
  const panelConf = await panelC.ok('cat', ['/etc/ponio-panel/panel.json']);
  const agentConf = await agentC.ok('cat', ['/etc/ponio-agent/config.json']);
  const agentKey = await agentC.ok('sha256sum', ['/etc/ponio-agent/agent.key']);
  const pid = async (c: Container, unit: string): Promise<string> =>
    (await c.ok('systemctl', ['show', '-p', 'MainPID', '--value', unit])).trim();
  const [panelPid, agentPid] = [await pid(panelC, 'ponio-panel'), await pid(agentC, 'ponio-agent')];

  const p = await panelC.exec('sh', ['/root/ponio-dist/panel/install-panel.sh'], { timeoutMs: 180_000 });
  assert.equal(p.code, 0, p.stderr + p.stdout);
  const agentDir = copyRelease(agentC, dist, 'agent');
  const a = await agentC.exec('sh', [`${agentDir}/install-agent.sh`], { timeoutMs: 180_000 });
  assert.equal(a.code, 0, a.stderr + a.stdout);

  assert.equal(await panelC.ok('cat', ['/etc/ponio-panel/panel.json']), panelConf);
  assert.equal(await agentC.ok('cat', ['/etc/ponio-agent/config.json']), agentConf);
  assert.equal(await agentC.ok('sha256sum', ['/etc/ponio-agent/agent.key']), agentKey);
  await waitActive(panelC, 'ponio-panel.service');
  await waitActive(agentC, 'ponio-agent.service');
  assert.notEqual(await pid(panelC, 'ponio-panel'), panelPid);
  assert.notEqual(await pid(agentC, 'ponio-agent'), agentPid);
  let list = { status: 0, text: '', body: null as unknown };
  for (let i = 0; i < 60 && list.status !== 200; i++) {
    list = await api('GET', '/hosts/oneline/websites').catch(() => ({ status: 0, text: '', body: null }));
    if (list.status !== 200) await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(list.status, 200, list.text);
  assert.match(list.text, /oneline\.test/);
});

test('--uninstall: both hosts are left with exactly the files they had before', async () => {
  assert.ok(panelC && agentC);
  // What the agent made through the panel is the admin's data, not the installer's: delete it first.
  const del = await api('DELETE', '/hosts/oneline/websites/oneline.test?removeFiles=true');
  assert.equal(del.status, 200, del.text);
  const a = await agentC.exec('sh', ['/opt/ponio-agent/install-agent.sh', '--uninstall']);
  assert.equal(a.code, 0, a.stderr + a.stdout);
  assert.notEqual(await unitState(agentC, 'ponio-agent.service'), 'active');
  assert.deepEqual(diffLists(agentPristine, await fileList(agentC)), { added: [], removed: [] });

  const p = await panelC.exec('sh', ['/opt/ponio-panel/install-panel.sh', '--uninstall']);
  assert.equal(p.code, 0, p.stderr + p.stdout);
  assert.notEqual(await unitState(panelC, 'ponio-panel.service'), 'active');
  assert.doesNotMatch(await panelC.ok('cat', ['/etc/passwd', '/etc/group']), /^ponio:/m);
  assert.deepEqual(diffLists(panelPristine, await fileList(panelC)), { added: [], removed: [] });
});
