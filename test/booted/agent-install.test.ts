// The agent installed for real: deploy/install-agent.sh from `npm run build` on a freshly booted
// Debian 12 (systemd as PID 1, the container's own Apache), enrolled with the line the panel
// prints, running as the real ponio-agent.service with its hardening; the panel (in this test
// process, on the test's private LAN) creates a website in SYSTEM mode and the container's Apache,
// reloaded through systemd, serves it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireRoot } from '../helpers/programs.ts';
import {
  bootContainer,
  createLan,
  poweroffAll,
  type Container,
  type Lan,
} from '../helpers/booted/container.ts';
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
  await poweroffAll();
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

/** Runs `sh -c SCRIPT` inside the agent service's own mount namespace (what the unit sees). */
async function inAgentMounts(
  script: string,
  args: readonly string[] = [],
): Promise<{ code: number; out: string }> {
  assert.ok(c);
  const pid = (await c.ok('systemctl', ['show', '-p', 'MainPID', '--value', 'ponio-agent.service'])).trim();
  assert.match(pid, /^[1-9]\d*$/);
  const r = await c.exec('nsenter', ['-t', pid, '-m', '--', '/bin/sh', '-c', script, 'sh', ...args]);
  return { code: r.code, out: r.stdout + r.stderr };
}

test('ponio-agent.service hardening: only its declared paths are writable, only its declared capabilities', async () => {
  assert.ok(c);
  const pid = (await c.ok('systemctl', ['show', '-p', 'MainPID', '--value', 'ponio-agent.service'])).trim();
  const status = await c.ok('cat', [`/proc/${pid}/status`]);
  // CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_KILL, CAP_NET_ADMIN, CAP_NET_RAW.
  assert.match(status, /^CapBnd:\s+000000000000302f$/m);
  assert.match(status, /^NoNewPrivs:\s+1$/m);
  for (const dir of [
    '/etc/ponio-agent',
    '/var/lib/ponio-agent',
    '/etc/apache2',
    '/var/www',
    '/etc/proftpd',
  ]) {
    const w = await inAgentMounts(`echo probe > ${dir}/.ponio-probe && rm ${dir}/.ponio-probe`);
    assert.equal(w.code, 0, `${dir} is writable for the agent: ${w.out}`);
  }
  // The whole file system, not a sample: a path is writable only if the mount it is on is, so
  // asking the kernel (access(W_OK), EROFS on a read-only mount; the probe is root, so file
  // modes do not hide anything) about every mount point in the service's namespace covers every
  // file. The writable ones must all be paths the unit declares (ReadWritePaths, its State/Logs/
  // Runtime directories, the private /tmp); the kernel's API file systems (/dev, /proc, /sys)
  // are left to the capability set checked above.
  const rwPaths = (await c.ok('systemctl', ['show', '-p', 'ReadWritePaths', '--value', 'ponio-agent']))
    .trim()
    .split(/\s+/)
    .map((p) => p.replace(/^-/, ''));
  const declared = [
    ...rwPaths,
    '/var/lib/ponio-agent',
    '/var/log/ponio-agent',
    '/run/ponio-agent',
    '/tmp',
    '/var/tmp',
  ];
  const under = (p: string, d: string): boolean => p === d || p.startsWith(`${d}/`);
  const points = [
    ...new Set(
      (await c.ok('cat', [`/proc/${pid}/mountinfo`]))
        .split('\n')
        .filter(Boolean)
        .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
        .filter((p) => p && !['/dev', '/proc', '/sys'].some((a) => under(p, a))),
    ),
  ];
  assert.ok(points.includes('/') && points.length > 10, points.join(' '));
  const probe = await inAgentMounts('for p do [ -w "$p" ] && printf "%s\\n" "$p"; done; true', points);
  assert.equal(probe.code, 0, probe.out);
  const writable = probe.out.split('\n').filter(Boolean);
  assert.ok(!writable.includes('/'), 'the root file system is read-only for the agent');
  const undeclared = writable.filter((p) => !declared.some((d) => under(p, d)));
  assert.deepEqual(undeclared, [], `writable mounts the unit does not declare (all: ${writable.join(' ')})`);
  for (const d of ['/etc/ponio-agent', '/var/lib/ponio-agent', '/etc/apache2', '/var/www', '/etc/proftpd'])
    assert.ok(writable.includes(d), `${d} is mounted writable: ${writable.join(' ')}`);
  for (const dir of [
    '/usr/bin',
    '/etc',
    '/etc/systemd/system',
    '/opt/ponio-agent',
    '/var/lib/dpkg',
    '/boot',
    '/root',
  ]) {
    const w = await inAgentMounts(`echo probe > ${dir}/.ponio-probe`);
    assert.notEqual(w.code, 0, `${dir} must not be writable for the agent`);
    assert.match(w.out, /Read-only file system|Permission denied|No such file/, w.out);
    await c.exec('rm', ['-f', `${dir}/.ponio-probe`]);
  }
});

test('system mode through the panel: FTP user in proftpd (reloaded by systemd), MySQL in MariaDB, firewall rule in iptables', async () => {
  assert.ok(t && c);
  const api = `/api/v1/hosts/${HOST}`;
  const PW = 'booted ftp password 1';
  const ftp = await t.request('POST', `${api}/ftp-users`, {
    body: { username: 'bootftp', password: PW, home: '/var/www/booted.test/public_html' },
  });
  assert.equal(ftp.status, 201, ftp.text);
  assert.match(await c.ok('cat', ['/etc/proftpd/ftpd.passwd']), /^bootftp:/m);
  const listing = await c.exec('curl', ['-sS', '--user', `bootftp:${PW}`, 'ftp://127.0.0.1/']);
  assert.equal(listing.code, 0, `FTP login as bootftp: ${listing.stderr}`);
  const bad = await c.exec('curl', ['-sS', '--user', 'bootftp:wrong password', 'ftp://127.0.0.1/']);
  assert.notEqual(bad.code, 0, 'a wrong password is refused');
  assert.match(await c.ok('journalctl', ['-b', '--no-pager', '-u', 'proftpd.service']), /Reload(ing|ed) /);

  const db = await t.request('POST', `${api}/databases`, { body: { name: 'bootdb' } });
  assert.equal(db.status, 201, db.text);
  const DBPW = 'booted db password 1';
  const u = await t.request('POST', `${api}/database-users`, {
    body: { user: 'bootuser', host: 'localhost', password: DBPW },
  });
  assert.equal(u.status, 201, u.text);
  const g = await t.request('PUT', `${api}/database-users/bootuser/localhost/grants/bootdb`, {
    body: { privileges: 'all' },
  });
  assert.equal(g.status, 200, g.text);
  const q = await c.ok('mariadb', [
    '-ubootuser',
    `-p${DBPW}`,
    '-N',
    '-e',
    'CREATE TABLE t (x INT); SELECT DATABASE()',
    'bootdb',
  ]);
  assert.equal(q.trim(), 'bootdb');

  const rule = await t.request<{ data: { rule: { id: string } } }>('POST', `${api}/firewall/rules`, {
    body: { action: 'deny', protocol: 'tcp', port: '8080', comment: 'booted' },
  });
  assert.equal(rule.status, 201, rule.text);
  const v4 = await c.ok('iptables', ['-S']);
  assert.match(v4, /-A INPUT -j PONIO-INPUT/);
  assert.ok(v4.includes('--dport 8080') && v4.includes(`ponio:${rule.body.data.rule.id}`), v4);
  await c.ok('test', ['-s', '/var/lib/ponio-agent/firewall.rules.v4']);
});

test('reboot: the firewall rules are back before the network is up; the agent comes back and the panel reconnects', async () => {
  assert.ok(t && c);
  await c.reboot();
  const v4 = await c.ok('iptables', ['-S']);
  assert.match(v4, /-A INPUT -j PONIO-INPUT/);
  assert.ok(v4.includes('--dport 8080'), v4);
  const mono = async (unit: string, prop: string): Promise<number> =>
    Number((await c!.ok('systemctl', ['show', '-p', prop, '--value', unit])).trim());
  const restored = await mono('ponio-firewall-restore.service', 'ActiveEnterTimestampMonotonic');
  const networkd = await mono('systemd-networkd.service', 'InactiveExitTimestampMonotonic');
  assert.ok(restored > 0 && networkd > 0, `${restored} ${networkd}`);
  assert.ok(restored < networkd, `rules restored (${restored} µs) before networkd started (${networkd} µs)`);
  assert.equal(
    (await c.ok('systemctl', ['show', '-p', 'Result', '--value', 'ponio-firewall-restore.service'])).trim(),
    'success',
  );
  await waitActive(c, 'ponio-agent.service');
  await t.panel.ctx.hosts.manager.waitForState(HOST, 'online', 60_000);
  const list = await t.request<{ data: { websites: { domain: string }[] } }>(
    'GET',
    `/api/v1/hosts/${HOST}/websites`,
  );
  assert.equal(list.status, 200, list.text);
  assert.ok(list.body.data.websites.some((w) => w.domain === 'booted.test'));
  const page = await c.ok('curl', ['-fsS', '-H', 'Host: booted.test', 'http://127.0.0.1/']);
  assert.ok(page.includes('ponio-placeholder booted.test'));
});
