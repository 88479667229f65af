// The agent installed for real: deploy/install-agent.sh from `npm run build` on a freshly booted
// Debian 12 (systemd as PID 1, the container's own Apache), enrolled with the line the panel
// prints, running as the real ponio-agent.service with its hardening; the panel (in this test
// process, on the test's private LAN) creates a website in SYSTEM mode and the container's Apache,
// reloaded through systemd, serves it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireRoot } from '../helpers/programs.ts';
import { bootContainer, createLan, type Container, type Lan } from '../helpers/booted/container.ts';
import { buildRelease, copyRelease, waitActive, type AddedHost } from '../helpers/booted/ponio.ts';

const HOST = 'booted1';
let lan: Lan | undefined;
let t: TestPanel | undefined;
let c: Container | undefined;
let dist: string;

before(async () => {
  requireRoot('the booted tier');
  lan = createLan();
  [t, dist, c] = await Promise.all([
    startTestPanel({ host: lan.hostIp }),
    buildRelease(),
    bootContainer(lan, { name: 'agent1' }),
  ]);
});

after(async () => {
  await c?.poweroff();
  await t?.close();
  lan?.destroy();
});

test('install-agent.sh enrolls a booted Debian 12; ponio-agent.service runs; a website goes live through systemd', async () => {
  assert.ok(t && c);
  const dir = copyRelease(c, dist, 'agent');
  const add = await t.request<{ data: AddedHost }>('POST', '/api/v1/hosts', {
    body: { name: HOST, address: c.ip, port: 7443 },
  });
  assert.equal(add.status, 201, add.text);
  const { token, caPin } = add.body.data;

  const install = await c.exec('sh', [
    `${dir}/install-agent.sh`,
    '--panel',
    t.url,
    '--token',
    token,
    '--ca-pin',
    caPin,
  ]);
  assert.equal(install.code, 0, install.stderr + install.stdout);
  assert.match(install.stdout, /Enrolled as host booted1/);
  assert.match(install.stdout, /installed and running/);
  await waitActive(c, 'ponio-agent.service');
  assert.equal((await c.ok('systemctl', ['is-enabled', 'ponio-agent.service'])).trim(), 'enabled');
  assert.equal((await c.ok('systemctl', ['is-enabled', 'ponio-firewall-restore.service'])).trim(), 'enabled');
  const pid = (await c.ok('systemctl', ['show', '-p', 'MainPID', '--value', 'ponio-agent.service'])).trim();
  const cmdline = (await c.ok('cat', [`/proc/${pid}/cmdline`])).split('\0');
  assert.deepEqual(cmdline.slice(0, 1), ['/usr/bin/node']);
  assert.ok(cmdline.includes('/opt/ponio-agent/ponio-agent.cjs'), cmdline.join(' '));

  await t.panel.ctx.hosts.manager.waitForState(HOST, 'online', 30_000);
  const sys = await t.request<{ data: { mode?: string } }>('GET', `/api/v1/hosts/${HOST}/system`);
  assert.equal(sys.status, 200, sys.text);

  const created = await t.request<{ data: { domain: string; enabled: boolean } }>(
    'POST',
    `/api/v1/hosts/${HOST}/websites`,
    { body: { domain: 'booted.test', aliases: ['www.booted.test'] } },
  );
  assert.equal(created.status, 201, created.text);
  // Debian's layout, Debian's Apache: the vhost in sites-available, enabled by a2ensite's link,
  // reloaded by `systemctl reload apache2` (the unit's journal says so), served on port 80.
  await c.ok('test', ['-f', '/etc/apache2/sites-available/booted.test.conf']);
  await c.ok('test', ['-L', '/etc/apache2/sites-enabled/booted.test.conf']);
  const page = await c.ok('curl', ['-fsS', '-H', 'Host: www.booted.test', 'http://127.0.0.1/']);
  assert.ok(page.includes('ponio-placeholder booted.test'), page.slice(0, 300));
  const journal = await c.ok('journalctl', ['-b', '--no-pager', '-u', 'apache2.service']);
  assert.match(journal, /Reload(ing|ed) (apache2\.service|The Apache HTTP Server)/);
});
