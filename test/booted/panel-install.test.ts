// Both installers on booted Debian 12 systems, the panel and two agents each in a container of
// its own: deploy/install-panel.sh lays out the hardened ponio-panel.service running as user
// ponio; the one-line install that panel serves (curl … | sh) installs and enrolls an agent on
// a reachable host (forward mode) and on a host whose network drops every connection made to it
// (reverse mode: the agent dials the panel's agent listener), and the panel drives both; the
// reverse host survives a reboot; re-running the installers upgrades in place (config, data,
// enrollment kept; calls keep working); --uninstall removes every file the installers and the
// services added (the file lists, and the agent host's MariaDB accounts, before and after match).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireRoot } from '../helpers/programs.ts';
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
  runningPid,
  unitState,
  waitActive,
  waitApi,
  waitHostOnline,
  type AddedHost,
} from '../helpers/booted/ponio.ts';

const CONFIG = '/etc/ponio-panel/panel.json';
let lan: Lan | undefined;
let panelC: Container | undefined;
let agentC: Container | undefined;
let revC: Container | undefined;
let dist: string;
let token = '';
const pristine = new Map<Container, string[]>();
let revDbs: string[] = [];
const api = (): ReturnType<typeof containerPanelApi> => {
  assert.ok(panelC);
  return containerPanelApi(panelC, () => token);
};

const mainPid = runningPid;

/** Adds a host on the installed panel and runs the one line it serves on `c`. */
async function oneLineInstall(c: Container, body: Record<string, unknown>): Promise<string> {
  assert.ok(panelC);
  const add = await api()<{ data: AddedHost }>('POST', '/hosts', body);
  assert.equal(add.status, 201, add.text);
  const line = add.body.data.installCommand;
  assert.ok(line, 'the installed panel serves its agent release');
  assert.ok(
    line.startsWith(`curl -fsS --pinnedpubkey sha256//`) &&
      line.includes(`https://${panelC.ip}:8443/agent/install.sh | sh -s --`),
    line,
  );
  const one = await c.exec('bash', ['-c', line], { timeoutMs: 180_000 });
  assert.equal(one.code, 0, one.stderr + one.stdout);
  assert.match(one.stdout, new RegExp(`Enrolled as host ${String(body.name)}`));
  await waitActive(c, 'ponio-agent.service');
  return line;
}

/** Whether `from` gets an HTTP answer from `to`'s Apache (port 80) within 3 s. */
async function httpReaches(from: Container, to: string): Promise<boolean> {
  const r = await from.exec('curl', ['-sS', '-o', '/dev/null', '--max-time', '3', `http://${to}/`]);
  return r.code === 0;
}

before(async () => {
  requireRoot('the booted tier');
  lan = createLan();
  [dist, panelC, agentC, revC] = await Promise.all([
    buildRelease(),
    bootContainer(lan, { name: 'panel' }),
    bootContainer(lan, { name: 'agent2' }),
    bootContainer(lan, { name: 'revagent', egressOnly: true }),
  ]);
  for (const c of [panelC, agentC, revC]) pristine.set(c, await fileList(c));
  revDbs = await mysqlState(revC);
});

after(async () => {
  await poweroffAll();
  lan?.destroy();
});

test('install-panel.sh: ponio-panel.service runs as user ponio; the one line it serves installs and enrolls an agent', async () => {
  assert.ok(panelC && agentC);
  const dir = copyRelease(panelC, dist, 'panel');
  const inst = await panelC.exec(
    'sh',
    [`${dir}/install-panel.sh`, '--public-url', `https://${panelC.ip}:8443`],
    {
      timeoutMs: 180_000,
    },
  );
  assert.equal(inst.code, 0, inst.stderr + inst.stdout);
  await waitActive(panelC, 'ponio-panel.service');
  assert.equal(
    (await panelC.ok('ps', ['-o', 'user=', '-p', await mainPid(panelC, 'ponio-panel')])).trim(),
    'ponio',
  );
  assert.equal((await panelC.ok('stat', ['-c', '%U %a', '/var/lib/ponio-panel'])).trim(), 'ponio 700');

  // The admin's first token, made with the CLI as the service user (so the database stays its).
  const made = await panelCli(panelC, ['token', 'create', 'booted', '--role', 'admin'], CONFIG);
  token = made.trim().split('\n').pop() ?? '';
  assert.ok(token.length > 20, made);
  await waitApi(api(), '/hosts');

  await oneLineInstall(agentC, { name: 'oneline', address: agentC.ip, port: 7443 });
  await waitHostOnline(api(), 'oneline');
  const ping = await api()<{ data: { pong: boolean } }>('POST', '/hosts/oneline/ping');
  assert.equal(ping.status, 200, ping.text);
  assert.equal(ping.body.data.pong, true);
  const site = await api()('POST', '/hosts/oneline/websites', { domain: 'oneline.test' });
  assert.equal(site.status, 201, site.text);
});

test('reverse mode: a host nobody can connect to enrolls with --reverse, dials the panel, and the panel drives it', async () => {
  assert.ok(panelC && revC);
  // The network really is egress-only: the host's Apache answers locally, not from the LAN;
  // the host reaches the panel.
  assert.equal(await httpReaches(revC, '127.0.0.1'), true, 'Apache runs on the reverse host');
  assert.equal(
    await httpReaches(panelC, revC.ip),
    false,
    'nothing on the LAN can connect to the reverse host',
  );
  await revC.ok('curl', [
    '-fsS',
    '-o',
    '/dev/null',
    '--max-time',
    '5',
    '-k',
    `https://${panelC.ip}:8443/healthz`,
  ]);

  await oneLineInstall(revC, { name: 'rev', mode: 'reverse' });
  const cfg = JSON.parse(await revC.ok('cat', ['/etc/ponio-agent/config.json'])) as Record<string, unknown>;
  assert.deepEqual(cfg.connect, [`wss://${panelC.ip}:7444`], 'enrollment set up the dial-out');
  assert.equal(cfg.listen, undefined, 'no listening address in reverse mode');
  await waitHostOnline(api(), 'rev');
  const listening = await revC.ok('ss', ['-Hltnp']);
  assert.doesNotMatch(listening, /"node"/, `the agent listens on no port:\n${listening}`);

  const base = '/hosts/rev';
  const site = await api()('POST', `${base}/websites`, { domain: 'rev.test' });
  assert.equal(site.status, 201, site.text);
  const page = await revC.ok('curl', ['-fsS', '-H', 'Host: rev.test', 'http://127.0.0.1/']);
  assert.ok(page.includes('ponio-placeholder rev.test'), page.slice(0, 300));

  const PW = 'reverse ftp password 1';
  const ftp = await api()('POST', `${base}/ftp-users`, {
    username: 'revftp',
    password: PW,
    home: '/var/www/rev.test/public_html',
  });
  assert.equal(ftp.status, 201, ftp.text);
  const login = await revC.exec('curl', ['-sS', '--user', `revftp:${PW}`, 'ftp://127.0.0.1/']);
  assert.equal(login.code, 0, `FTP login as revftp: ${login.stderr}`);

  const db = await api()('POST', `${base}/databases`, { name: 'revdb' });
  assert.equal(db.status, 201, db.text);
  const DBPW = 'reverse db password 1';
  const u = await api()('POST', `${base}/database-users`, {
    user: 'revuser',
    host: 'localhost',
    password: DBPW,
  });
  assert.equal(u.status, 201, u.text);
  const g = await api()('PUT', `${base}/database-users/revuser/localhost/grants/revdb`, {
    privileges: 'all',
  });
  assert.equal(g.status, 200, g.text);
  const q = await revC.ok('mariadb', ['-urevuser', `-p${DBPW}`, '-N', '-e', 'SELECT DATABASE()', 'revdb']);
  assert.equal(q.trim(), 'revdb');

  const rule = await api()<{ data: { rule: { id: string } } }>('POST', `${base}/firewall/rules`, {
    action: 'deny',
    protocol: 'tcp',
    port: '8080',
    comment: 'reverse',
  });
  assert.equal(rule.status, 201, rule.text);
  assert.ok((await revC.ok('iptables', ['-S'])).includes(`ponio:${rule.body.data.rule.id}`));
});

test('reverse mode: after a reboot of its host the agent dials the panel again; rules and calls are back', async () => {
  assert.ok(panelC && revC);
  await revC.reboot();
  assert.equal(await httpReaches(panelC, revC.ip), false, 'still egress-only after the reboot');
  assert.match(await revC.ok('iptables', ['-S']), /--dport 8080 /);
  await waitActive(revC, 'ponio-agent.service');
  await waitHostOnline(api(), 'rev', 90_000);
  const list = await api()<{ data: { websites: { domain: string }[] } }>('GET', '/hosts/rev/websites');
  assert.equal(list.status, 200, list.text);
  assert.ok(
    list.body.data.websites.some((w) => w.domain === 'rev.test'),
    list.text,
  );
  const dbs = await api()('GET', '/hosts/rev/databases');
  assert.equal(dbs.status, 200, dbs.text);
  assert.match(dbs.text, /"revdb"/);
});

test('upgrade in place: both installers again; config, data and enrollment kept, services restarted, calls work', async () => {
  assert.ok(panelC && agentC);
  const panelConf = await panelC.ok('cat', [CONFIG]);
  const agentConf = await agentC.ok('cat', ['/etc/ponio-agent/config.json']);
  const agentKey = await agentC.ok('sha256sum', ['/etc/ponio-agent/agent.key']);
  const [panelPid, agentPid] = [await mainPid(panelC, 'ponio-panel'), await mainPid(agentC, 'ponio-agent')];

  const p = await panelC.exec('sh', ['/root/ponio-dist/panel/install-panel.sh'], { timeoutMs: 180_000 });
  assert.equal(p.code, 0, p.stderr + p.stdout);
  const agentDir = copyRelease(agentC, dist, 'agent');
  const a = await agentC.exec('sh', [`${agentDir}/install-agent.sh`], { timeoutMs: 180_000 });
  assert.equal(a.code, 0, a.stderr + a.stdout);

  assert.equal(await panelC.ok('cat', [CONFIG]), panelConf);
  assert.equal(await agentC.ok('cat', ['/etc/ponio-agent/config.json']), agentConf);
  assert.equal(await agentC.ok('sha256sum', ['/etc/ponio-agent/agent.key']), agentKey);
  await waitActive(panelC, 'ponio-panel.service');
  await waitActive(agentC, 'ponio-agent.service');
  assert.notEqual(await mainPid(panelC, 'ponio-panel'), panelPid);
  assert.notEqual(await mainPid(agentC, 'ponio-agent'), agentPid);
  const list = await waitApi(api(), '/hosts/oneline/websites');
  assert.match(list.text, /oneline\.test/);
  // The reverse agent found the restarted panel again on its own.
  await waitHostOnline(api(), 'rev');
});

test('--uninstall: every host is left with exactly the files (and MariaDB accounts) it had before', async () => {
  assert.ok(panelC && agentC && revC);
  // What the agents made through the panel is the admin's data, not the installer's: delete it first.
  for (const [m, p] of [
    ['DELETE', '/hosts/oneline/websites/oneline.test?removeFiles=true'],
    ['DELETE', '/hosts/rev/ftp-users/revftp'],
    ['DELETE', '/hosts/rev/websites/rev.test?removeFiles=true'],
    ['DELETE', '/hosts/rev/database-users/revuser/localhost'],
    ['DELETE', '/hosts/rev/databases/revdb'],
  ] as const) {
    const r = await api()(m, p);
    assert.equal(r.status, 200, `${m} ${p}: ${r.text}`);
  }
  const rules = await api()<{ data: { rules: { id: string }[] } }>('GET', '/hosts/rev/firewall');
  assert.equal(rules.status, 200, rules.text);
  assert.equal(rules.body.data.rules.length, 1, rules.text);
  for (const r of rules.body.data.rules) {
    const d = await api()('DELETE', `/hosts/rev/firewall/rules/${r.id}`);
    assert.equal(d.status, 200, d.text);
  }
  for (const c of [agentC, revC]) {
    const a = await c.exec('sh', ['/opt/ponio-agent/install-agent.sh', '--uninstall']);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    assert.notEqual(await unitState(c, 'ponio-agent.service'), 'active');
    assert.deepEqual(diffLists(pristine.get(c) ?? [], await fileList(c)), { added: [], removed: [] }, c.name);
  }
  assert.deepEqual(
    await mysqlState(revC),
    revDbs,
    'the database and the account made through the panel are gone',
  );

  const p = await panelC.exec('sh', ['/opt/ponio-panel/install-panel.sh', '--uninstall']);
  assert.equal(p.code, 0, p.stderr + p.stdout);
  assert.notEqual(await unitState(panelC, 'ponio-panel.service'), 'active');
  assert.doesNotMatch(await panelC.ok('cat', ['/etc/passwd', '/etc/group']), /^ponio:/m);
  assert.deepEqual(diffLists(pristine.get(panelC) ?? [], await fileList(panelC)), { added: [], removed: [] });
});
