// The websites module in SYSTEM mode (Debian layout, no --sandbox) against a real Apache running
// Debian's real configuration, without touching the machine's own files or services: the real
// agent process and `apache2ctl start` run in a private mount namespace (test/helpers/mount-ns.ts)
// where /etc/apache2 is a copy of the host's (ports.conf: Listen 127.0.0.1:80) and /var/www,
// /var/log/apache2, /run, /etc/ponio-agent, /var/lib/ponio-agent are temp dirs. /run being a temp
// dir hides /run/systemd, so the adapter reloads with `apache2ctl graceful` and can never reach
// the host's systemd. The panel's connection manager drives it over mutual TLS on loopback; every
// check that matters is an HTTP request to 127.0.0.1:80 with a Host: header.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { lookupUser } from '../../agent/modules/websites/site-tree.ts';
import { ROOT, spawnAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { alive, mountNsCommand, type MountNsSpec } from '../helpers/mount-ns.ts';
import { testManager } from '../helpers/panel-link.ts';
import { makeTestPki } from '../helpers/pki.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { tempDir } from '../helpers/tmp.ts';
import { fetchSite, hashTree } from '../helpers/websites.ts';

const HOST = 'web1';
const REAL_CONF = '/etc/apache2';
/** Host paths the namespace mounts over that may not exist: they must still not exist at the end. */
const MOUNT_POINTS = ['/etc/ponio-agent', '/var/lib/ponio-agent', '/run/apache2', '/run/lock/apache2'];

let dir: string;
/** The temp dirs, by the system path they stand for inside the namespace. */
let t: { conf: string; www: string; log: string; run: string; etcAgent: string; libAgent: string };
let agent: AgentProcess | undefined;
let m: ConnectionManager | undefined;
let realConfBefore: string;
let realWwwBefore: string;
let mountPointsBefore: boolean[];
let defaultPage: string;
let defaultBefore: string;
let www: { uid: number; gid: number };

const inConf = (rel: string): string => path.join(t.conf, rel);
const inWww = (rel: string): string => path.join(t.www, rel);

async function call<E extends EventName>(event: E, params: RequestIn<E>) {
  assert.ok(m);
  return m.call(HOST, event, params);
}

const get = (host: string) => fetchSite(80, host);

/** Served with its placeholder (not Debian's default site, which answers any other Host:). */
async function assertServed(host: string, site = host): Promise<void> {
  const res = await get(host);
  assert.equal(res.status, 200, host);
  assert.ok(
    res.body.includes(`<!-- ponio-placeholder ${site} -->`),
    `${host} serves the placeholder of ${site}`,
  );
}

async function assertNotServed(domain: string): Promise<void> {
  const res = await get(domain);
  assert.equal(res.body, defaultPage, `${domain} falls through to Debian's default site`);
}

/** Debian's default site: its vhost files, its enabled link and its document root. */
async function defaultDigest(): Promise<string> {
  const h = createHash('sha256');
  for (const rel of ['sites-available/000-default.conf', 'sites-available/default-ssl.conf'])
    h.update(`${rel}\0${existsSync(inConf(rel)) ? readFileSync(inConf(rel)).toString('base64') : '-'}\n`);
  const link = inConf('sites-enabled/000-default.conf');
  const st = await fsp.lstat(link);
  h.update(
    `${st.mode} ${st.isSymbolicLink() ? readlinkSync(link) : readFileSync(link).toString('base64')}\n`,
  );
  h.update(await hashTree(inWww('html')));
  return h.digest('hex');
}

const siteLog = (rel: string): boolean => /(^|\/)logs\/[^/]+\.log$/.test(rel);

/** The config copy plus one site tree (per-site logs count by presence: Apache appends to them). */
async function siteDigest(domain: string): Promise<string> {
  return `${await hashTree(t.conf)}:${await hashTree(inWww(domain), () => false, siteLog)}`;
}

function freePort80(): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `127.0.0.1:80 is busy (${e.code ?? e.message}): this test runs Debian's Apache there, in a ` +
            `private mount namespace; stop what listens on port 80 (ss -ltnp 'sport = :80') and retry`,
        ),
      ),
    );
    s.listen(80, '127.0.0.1', () => s.close(() => resolve()));
  });
}

/** Listen directives outside ports.conf would bind more than loopback: refuse such a config. */
function otherListens(conf: string): string[] {
  const found: string[] = [];
  const files = [path.join(conf, 'apache2.conf')];
  for (const d of ['mods-enabled', 'conf-enabled', 'sites-enabled'])
    for (const n of existsSync(path.join(conf, d)) ? readdirSync(path.join(conf, d)).sort() : [])
      files.push(path.join(conf, d, n));
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue; // a dangling link: Apache would skip it too (IncludeOptional)
    }
    if (/^\s*Listen\s/im.test(text)) found.push(path.relative(conf, f));
  }
  return found;
}

function apachePid(): number | null {
  try {
    const pid = Number(readFileSync(path.join(t.run, 'apache2/apache2.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

const runs = alive;

before(async () => {
  requireRoot('the websites system-mode test');
  requireProgram('apache2', 'apache2');
  requireProgram('apache2ctl', 'apache2');
  requireProgram('unshare', 'util-linux');
  requireProgram('mount', 'mount');
  for (const f of ['apache2.conf', 'ports.conf', 'envvars', 'sites-enabled/000-default.conf'])
    assert.ok(
      existsSync(path.join(REAL_CONF, f)),
      `${REAL_CONF}/${f} is missing: this test runs Debian's own Apache configuration (apt-get install --reinstall apache2)`,
    );
  const wwwUser = await lookupUser('www-data');
  assert.ok(wwwUser, 'the www-data user exists (apt-get install apache2)');
  www = wwwUser;
  realConfBefore = await hashTree(REAL_CONF);
  realWwwBefore = await hashTree('/var/www');
  mountPointsBefore = MOUNT_POINTS.map((p) => existsSync(p));
  await freePort80();

  dir = tempDir('ponio-websys-');
  t = {
    conf: path.join(dir, 'etc-apache2'),
    www: path.join(dir, 'var-www'),
    log: path.join(dir, 'var-log-apache2'),
    run: path.join(dir, 'run'),
    etcAgent: path.join(dir, 'etc-ponio-agent'),
    libAgent: path.join(dir, 'var-lib-ponio-agent'),
  };
  const scratch = path.join(dir, 'scratch');
  // The machine's real configuration, copied (links, modes and owners kept); only ports.conf changes.
  execFileSync('cp', ['-a', REAL_CONF, t.conf]);
  await fsp.writeFile(inConf('ports.conf'), 'Listen 127.0.0.1:80\n');
  const listens = otherListens(t.conf);
  assert.deepEqual(listens, [], `Listen directives outside ports.conf would bind more than loopback`);
  await fsp.mkdir(t.www, { mode: 0o755 });
  if (existsSync('/var/www/html')) execFileSync('cp', ['-a', '/var/www/html', inWww('html')]);
  if (!existsSync(inWww('html/index.html'))) {
    await fsp.mkdir(inWww('html'), { recursive: true, mode: 0o755 });
    await fsp.writeFile(inWww('html/index.html'), '<p>default site of the copy</p>\n', { mode: 0o644 });
  }
  defaultPage = await fsp.readFile(inWww('html/index.html'), 'utf8');
  const logSt = statSync('/var/log/apache2', { throwIfNoEntry: false });
  await fsp.mkdir(t.log);
  await fsp.chmod(t.log, logSt ? logSt.mode & 0o7777 : 0o750);
  if (logSt) await fsp.chown(t.log, logSt.uid, logSt.gid);
  await fsp.mkdir(path.join(t.run, 'lock'), { recursive: true });
  await fsp.chmod(t.run, 0o755);
  await fsp.chmod(path.join(t.run, 'lock'), 0o1777);
  await fsp.mkdir(t.libAgent, { mode: 0o700 });
  await fsp.mkdir(scratch, { mode: 0o700 });

  // The agent's mutual-TLS material and config, where a system-mode install keeps them.
  const pki = await makeTestPki();
  const files = await pki.agent(HOST);
  await fsp.mkdir(t.etcAgent, { mode: 0o700 });
  await fsp.copyFile(files.certFile, path.join(t.etcAgent, 'agent.crt'));
  await fsp.copyFile(files.keyFile, path.join(t.etcAgent, 'agent.key'));
  await fsp.copyFile(files.caFile, path.join(t.etcAgent, 'ca.crt'));
  await fsp.writeFile(
    path.join(t.etcAgent, 'config.json'),
    JSON.stringify({
      listen: '127.0.0.1:0',
      logLevel: 'info',
      modules: { ftp: false, mysql: false, firewall: false },
    }),
  );
  defaultBefore = await defaultDigest();

  const spec: MountNsSpec = {
    callerNs: readlinkSync('/proc/self/ns/mnt'),
    scratch,
    binds: [
      [t.conf, '/etc/apache2'],
      [t.www, '/var/www'],
      [t.log, '/var/log/apache2'],
      [t.run, '/run'],
      [t.etcAgent, '/etc/ponio-agent'],
      [t.libAgent, '/var/lib/ponio-agent'],
    ],
    hide: ['/run/systemd'],
    mustNotExist: ['/run/systemd'],
    apache: { host: '127.0.0.1', port: 80, pidFile: '/run/apache2/apache2.pid' },
  };
  // If this process dies without its after() hooks, take the namespace's processes with it.
  process.once('exit', () => {
    if (agent?.proc.pid !== undefined && agent.proc.exitCode === null)
      try {
        process.kill(-agent.proc.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    const pid = t ? apachePid() : null;
    if (pid !== null && runs(pid)) process.kill(pid, 'SIGTERM');
  });
  const [cmd, ...pre] = mountNsCommand(spec, process.execPath, [path.join(ROOT, 'bin/ponio-agent.js')]);
  assert.ok(cmd);
  agent = await spawnAgent(['--config', '/etc/ponio-agent/config.json'], {
    command: [cmd, ...pre],
    timeoutMs: 60_000,
  });
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  await m.waitForState(HOST, 'online', 15_000);
});

after(async () => {
  await m?.close();
  await agent?.stop();
});

describe('websites in system mode, on Debian’s real Apache configuration', () => {
  test('the agent runs in system mode; Debian’s default site is listed read-only and served', async () => {
    assert.ok(m);
    const hello = m.status(HOST)?.hello;
    assert.equal(hello?.mode, 'system');
    assert.deepEqual(
      hello?.modules.find((x) => x.name === 'websites'),
      // System mode: Apache's state from its pid file (never restarted by PonIO).
      { name: 'websites', available: true, service: { service: 'apache2', state: 'running', restarts: 0 } },
      agent?.output(),
    );
    for (const name of ['ftp', 'mysql', 'firewall'])
      assert.match(
        hello?.modules.find((x) => x.name === name)?.reason ?? '',
        /turned off in the agent configuration/,
      );
    const list = await call('list websites', {});
    assert.ok(list.ok, JSON.stringify(list));
    assert.equal(list.data.url, undefined, 'no sandbox url in system mode');
    const def = list.data.websites.find(
      (w) => w.configFile === '/etc/apache2/sites-available/000-default.conf',
    );
    assert.equal(def?.managed, false);
    assert.equal(def?.enabled, true);
    const res = await get('localhost');
    assert.equal(res.status, 200);
    assert.equal(res.body, defaultPage);
  });

  test('create: the vhost in sites-available, an a2ensite-style relative link, the docroot under /var/www; served', async () => {
    const r = await call('create website', { domain: 'alpha.test', aliases: ['www.alpha.test'] });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.data.configFile, '/etc/apache2/sites-available/alpha.test.conf');
    assert.equal(r.data.docroot, '/var/www/alpha.test/public_html');
    assert.equal(r.data.enabled, true);
    assert.equal(r.data.managed, true);
    // Served as soon as the reply arrives: the reload waited for Apache's new generation.
    await assertServed('alpha.test');
    await assertServed('www.alpha.test', 'alpha.test');

    const vhost = await fsp.readFile(inConf('sites-available/alpha.test.conf'), 'utf8');
    assert.match(vhost, /^# Managed by PonIO/);
    assert.match(vhost, /^<VirtualHost \*:80>$/m);
    assert.match(vhost, /^\s*DocumentRoot "\/var\/www\/alpha\.test\/public_html"$/m);
    assert.equal(readlinkSync(inConf('sites-enabled/alpha.test.conf')), '../sites-available/alpha.test.conf');
    const index = await fsp.readFile(inWww('alpha.test/public_html/index.html'), 'utf8');
    assert.match(index, /<!-- ponio-placeholder alpha\.test -->/);
    for (const rel of ['alpha.test', 'alpha.test/public_html', 'alpha.test/public_html/index.html']) {
      const st = statSync(inWww(rel));
      assert.deepEqual([st.uid, st.gid], [www.uid, www.gid], `${rel} belongs to www-data`);
    }
    const access = await fsp.readFile(inWww('alpha.test/logs/access.log'), 'utf8');
    assert.match(access, /"GET \/ HTTP\/1\.1" 200/, 'the per-site access log is written');
    await assertNotServed('beta.test');
    assert.equal((await get('localhost')).body, defaultPage, 'the default site is still served');
  });

  test('disable → not served, link gone, file kept; enable → served again', async () => {
    const off = await call('disable website', { domain: 'alpha.test' });
    assert.ok(off.ok, JSON.stringify(off));
    assert.equal(off.data.enabled, false);
    await assertNotServed('alpha.test');
    await assertNotServed('www.alpha.test');
    await assert.rejects(fsp.lstat(inConf('sites-enabled/alpha.test.conf')), { code: 'ENOENT' });
    assert.match(
      await fsp.readFile(inConf('sites-available/alpha.test.conf'), 'utf8'),
      /^# Managed by PonIO/,
    );
    await fsp.access(inWww('alpha.test/public_html/index.html'));
    const list = await call('list websites', {});
    assert.equal(list.ok && list.data.websites.find((w) => w.domain === 'alpha.test')?.enabled, false);

    const on = await call('enable website', { domain: 'alpha.test' });
    assert.ok(on.ok, JSON.stringify(on));
    assert.equal(on.data.enabled, true);
    await assertServed('alpha.test');
    assert.equal(readlinkSync(inConf('sites-enabled/alpha.test.conf')), '../sites-available/alpha.test.conf');
  });

  test('a config Apache cannot start (a log it cannot open) is refused before any reload: Apache keeps serving', async () => {
    // `apache2 -t` does not open log files, so these pass the checker; a graceful restart would
    // exit (AH00091) and take every site down. The agent checks the log files of every file the
    // checker read and refuses, naming the file. First PonIO's own vhost, on the site tree a
    // delete without removeFiles kept, in which error.log is no longer a file.
    assert.ok((await call('create website', { domain: 'beta.test' })).ok);
    await assertServed('beta.test');
    const del = await call('delete website', { domain: 'beta.test' });
    assert.deepEqual(del.ok && del.data, { domain: 'beta.test', filesRemoved: false });
    await fsp.rm(inWww('beta.test/logs/error.log'));
    await fsp.mkdir(inWww('beta.test/logs/error.log'));
    const before = await siteDigest('beta.test');
    const pidBefore = apachePid();

    const r = await call('create website', { domain: 'beta.test' });
    assert.equal(!r.ok && r.error.code, 'failed-precondition', JSON.stringify(r));
    const msg = !r.ok ? r.error.message : '';
    assert.match(msg, /^Apache would not start with this configuration/);
    assert.ok(
      msg.includes(
        '/etc/apache2/sites-available/beta.test.conf line 17: the ErrorLog /var/www/beta.test/logs/error.log is a directory',
      ),
      msg,
    );
    assert.equal(await siteDigest('beta.test'), before, 'vhost and link removed, the kept tree unchanged');
    assert.equal(apachePid(), pidBefore, 'Apache was never restarted');
    await assertServed('alpha.test');
    assert.equal((await get('localhost')).body, defaultPage);
    await assertNotServed('beta.test');
    await fsp.rmdir(inWww('beta.test/logs/error.log'));

    // Then a file an admin dropped into sites-enabled by hand (Debian's ${APACHE_LOG_DIR} and the
    // other variables of the real config are resolved, so only this file is named).
    const foreign = inConf('sites-enabled/zz-by-hand.conf');
    await fsp.mkdir(inWww('a-directory'));
    await fsp.writeFile(
      foreign,
      '<VirtualHost *:80>\n    ServerName foreign.test\n    ErrorLog /var/www/a-directory\n</VirtualHost>\n',
    );
    try {
      const f = await call('create website', { domain: 'beta.test' });
      assert.equal(!f.ok && f.error.code, 'failed-precondition', JSON.stringify(f));
      assert.deepEqual(!f.ok && (f.error.details as { faultyFiles?: string[] }).faultyFiles, [
        '/etc/apache2/sites-enabled/zz-by-hand.conf',
      ]);
      assert.ok(
        !f.ok && f.error.message.includes('line 3: the ErrorLog /var/www/a-directory is a directory'),
        JSON.stringify(f),
      );
      assert.equal(apachePid(), pidBefore, 'Apache was never restarted');
      await assertServed('alpha.test');
      await assertNotServed('beta.test');
    } finally {
      await fsp.rm(foreign, { force: true });
      await fsp.rm(inWww('a-directory'), { recursive: true, force: true });
    }

    // Once the files are fixed, the same create succeeds and reuses the kept tree.
    const again = await call('create website', { domain: 'beta.test' });
    assert.ok(again.ok, JSON.stringify(again));
    await assertServed('beta.test');
  });

  test('delete with removeFiles → not served, vhost, link and tree gone', async () => {
    for (const domain of ['alpha.test', 'beta.test']) {
      const r = await call('delete website', { domain, removeFiles: true });
      assert.deepEqual(r.ok && r.data, { domain, filesRemoved: true });
      await assertNotServed(domain);
      await assert.rejects(fsp.lstat(inConf(`sites-enabled/${domain}.conf`)), { code: 'ENOENT' });
      await assert.rejects(fsp.lstat(inConf(`sites-available/${domain}.conf`)), { code: 'ENOENT' });
      await assert.rejects(fsp.lstat(inWww(domain)), { code: 'ENOENT' });
    }
    const list = await call('list websites', {});
    assert.ok(list.ok);
    assert.deepEqual(
      list.data.websites.filter((w) => w.managed),
      [],
      'no PonIO site is left',
    );
  });

  test('Debian’s default site was served and untouched throughout', async () => {
    assert.equal(await defaultDigest(), defaultBefore, '000-default.conf, its link and /var/www/html');
    const res = await get('localhost');
    assert.equal(res.status, 200);
    assert.equal(res.body, defaultPage);
  });

  test('stopping the agent stops Apache; the machine’s own files were never written', async () => {
    const pid = apachePid();
    assert.ok(pid !== null && runs(pid), 'Apache runs in the namespace');
    await m?.close();
    m = undefined;
    await agent?.stop();
    assert.equal(runs(pid), false, 'Apache stopped with the namespace');
    await assert.rejects(get('localhost'), { code: 'ECONNREFUSED' });
    assert.equal(await hashTree(REAL_CONF), realConfBefore, `${REAL_CONF} unchanged`);
    assert.equal(await hashTree('/var/www'), realWwwBefore, '/var/www unchanged');
    assert.deepEqual(
      MOUNT_POINTS.map((p) => existsSync(p)),
      mountPointsBefore,
      `no mount point was created on the host (${MOUNT_POINTS.join(', ')})`,
    );
  });
});
