// FTP accounts against a real proftpd (sandbox instance started by the agent's ftp module),
// driven through the real RPC path: panel connection manager → mutual TLS → agent router → module.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable, Readable } from 'node:stream';
import { pino } from 'pino';
import { Client, FTPError } from 'basic-ftp';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { systemAccounts } from '../../agent/modules/ftp/accounts.ts';
import { fetchSite, portOf } from '../helpers/websites.ts';

const HOST = 'ftp1';
const DOMAIN = 'ftp-site.test';

let pki: TestPki;
let agent: RunningAgent;
let manager: ConnectionManager;
let sandbox: string;
let ftpPort: number;
let docroot: string;
let apachePort: number;
let agentLog = '';

const userFile = (): string => path.join(sandbox, 'etc/proftpd/ftpd.passwd');
const ftpRoot = (): string => path.join(sandbox, 'srv/ftp');

/** Logs in with a real FTP client; returns the connected client (caller closes) or the FTP error code. */
async function login(user: string, password: string): Promise<Client | number> {
  const c = new Client(10_000);
  try {
    await c.access({ host: '127.0.0.1', port: ftpPort, user, password });
    return c;
  } catch (e) {
    c.close();
    if (e instanceof FTPError) return e.code;
    throw e;
  }
}

async function assertLoginRefused(user: string, password: string, why: string): Promise<void> {
  const r = await login(user, password);
  if (typeof r !== 'number') r.close();
  assert.equal(r, 530, `${why}: expected 530 Login incorrect`);
}

async function assertLoginWorks(user: string, password: string, why: string): Promise<Client> {
  const r = await login(user, password);
  if (typeof r === 'number') assert.fail(`${why}: login refused with FTP code ${r}`);
  return r;
}

async function call<E extends EventName>(event: E, params: RequestIn<E>) {
  return manager.call(HOST, event, params);
}

before(async () => {
  requireRoot('the FTP system test');
  requireProgram('proftpd', 'proftpd-core');
  requireProgram('openssl', 'openssl');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-ftp-'));
  const cfg = loadAgentConfig(
    { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
    {},
  );
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      agentLog += chunk.toString();
      cb();
    },
  });
  agent = await startAgent(cfg, pino({ level: 'debug' }, sink));
  manager = testManager(pki);
  manager.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  const st = await manager.waitForState(HOST, 'online');
  const mods = st.hello?.modules ?? [];
  const ftp = mods.find((m) => m.name === 'ftp');
  assert.ok(ftp?.available, `ftp module unavailable: ${ftp?.reason ?? '?'}\n${agentLog.slice(-2000)}`);
  const websites = mods.find((m) => m.name === 'websites');
  assert.ok(
    websites?.available,
    `websites module unavailable: ${websites?.reason ?? '?'} (apt-get install apache2)`,
  );
  const info = JSON.parse(readFileSync(path.join(sandbox, 'run/proftpd.json'), 'utf8')) as { port: number };
  ftpPort = info.port;

  // The real websites module creates the site; its sandbox Apache serves what FTP uploads.
  const site = await call('create website', { domain: DOMAIN });
  assert.ok(site.ok, JSON.stringify(site));
  assert.ok(site.data.docroot);
  docroot = site.data.docroot;
  apachePort = portOf(site.data.url);
});

after(async () => {
  await manager?.close();
  await agent?.stop();
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

describe('FTP accounts on a real proftpd', () => {
  const PW = 'correct horse 1';

  test('create → real login → upload lands in the site docroot and Apache serves it', async () => {
    const r = await call('create ftp user', { username: 'alice', password: PW, home: docroot });
    assert.ok(r.ok, JSON.stringify(r));
    const www = statSync(docroot);
    assert.deepEqual(r.data, {
      username: 'alice',
      home: docroot,
      uid: www.uid,
      gid: www.gid,
      enabled: true,
      homeExists: true,
    });

    const c = await assertLoginWorks('alice', PW, 'new user');
    try {
      assert.equal(await c.pwd(), '/', 'jailed in its home (DefaultRoot ~)');
      await c.uploadFrom(Readable.from(['hello from ftp\n']), 'hello.txt');
      await c.cd('..');
      assert.equal(await c.pwd(), '/', 'cannot leave the jail');
    } finally {
      c.close();
    }
    const uploaded = path.join(docroot, 'hello.txt');
    assert.equal(readFileSync(uploaded, 'utf8'), 'hello from ftp\n');
    assert.equal(statSync(uploaded).uid, www.uid, 'file owned by the site user');
    const res = await fetchSite(apachePort, DOMAIN, '/hello.txt');
    assert.equal(res.status, 200, 'Apache serves the uploaded file');
    assert.equal(res.body, 'hello from ftp\n');

    // The password never lands anywhere in clear: not in the user file, not in the agent log.
    const file = readFileSync(userFile(), 'utf8');
    assert.ok(!file.includes(PW));
    assert.match(file, /^alice:\$6\$[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}:/m);
    assert.ok(!agentLog.includes(PW), 'password leaked into the agent log');
    assert.equal(statSync(userFile()).mode & 0o777, 0o600);

    const list = await call('list ftp users', {});
    assert.ok(list.ok);
    assert.deepEqual(
      list.data.users.map((u) => u.username),
      ['alice'],
    );
    const dup = await call('create ftp user', { username: 'alice', password: PW, home: docroot });
    assert.equal(!dup.ok && dup.error.code, 'already-exists');
  });

  test('wrong password and unknown users are refused', async () => {
    await assertLoginRefused('alice', 'not the password', 'wrong password');
    await assertLoginRefused('mallory', PW, 'unknown user');
  });

  test('disabled user refused (an open session is ended too), re-enabled accepted, nothing deleted', async () => {
    const open = await assertLoginWorks('alice', PW, 'session opened before disabling');
    try {
      assert.ok((await open.list()).some((f) => f.name === 'hello.txt'));
      const d = await call('disable ftp user', { username: 'alice' });
      assert.ok(d.ok, JSON.stringify(d));
      assert.equal(d.data.enabled, false);
      await assert.rejects(open.list(), 'the open session no longer works');
    } finally {
      open.close();
    }
    await assertLoginRefused('alice', PW, 'disabled user');
    assert.ok(existsSync(path.join(docroot, 'hello.txt')));
    const again = await call('disable ftp user', { username: 'alice' });
    assert.ok(again.ok && again.data.enabled === false, 'disabling twice is harmless');

    const e = await call('enable ftp user', { username: 'alice' });
    assert.ok(e.ok && e.data.enabled, JSON.stringify(e));
    (await assertLoginWorks('alice', PW, 're-enabled user')).close();
  });

  test('changed password: the old one is refused, the new one accepted', async () => {
    const NEW = 'brand-new pässword';
    const r = await call('set ftp password', { username: 'alice', password: NEW });
    assert.ok(r.ok, JSON.stringify(r));
    await assertLoginRefused('alice', PW, 'old password');
    (await assertLoginWorks('alice', NEW, 'new password')).close();

    // A password change keeps a disabled user disabled.
    assert.ok((await call('disable ftp user', { username: 'alice' })).ok);
    assert.ok((await call('set ftp password', { username: 'alice', password: PW })).ok);
    await assertLoginRefused('alice', PW, 'still disabled');
    assert.ok((await call('enable ftp user', { username: 'alice' })).ok);
    (await assertLoginWorks('alice', PW, 'enabled with the newest password')).close();

    const missing = await call('set ftp password', { username: 'nobody-here', password: NEW });
    assert.equal(!missing.ok && missing.error.code, 'not-found');
  });

  test('a home under the FTP root is created, owned by the root’s user', async () => {
    const home = path.join(ftpRoot(), 'bob', 'files');
    const r = await call('create ftp user', { username: 'bob@example.com', password: PW, home });
    assert.ok(r.ok, JSON.stringify(r));
    const st = statSync(home);
    assert.ok(st.isDirectory());
    assert.equal(st.uid, statSync(ftpRoot()).uid);
    const c = await assertLoginWorks('bob@example.com', PW, 'ftp-root user');
    try {
      await c.uploadFrom(Readable.from(['x']), 'x.txt');
    } finally {
      c.close();
    }
    assert.ok(existsSync(path.join(home, 'x.txt')));

    // A home that disappears (say its website was deleted) is reported, and logins fail.
    const gone = path.join(ftpRoot(), 'erin');
    assert.ok((await call('create ftp user', { username: 'erin', password: PW, home: gone })).ok);
    await fsp.rmdir(gone);
    const list = await call('list ftp users', {});
    assert.ok(list.ok);
    assert.equal(list.data.users.find((u) => u.username === 'erin')?.homeExists, false);
    assert.equal(list.data.users.find((u) => u.username === 'bob@example.com')?.homeExists, true);
    await assertLoginRefused('erin', PW, 'home gone');
  });

  test('hostile user names and homes are refused and leave the user file byte-for-byte unchanged', async () => {
    // Traps on disk: a symlink out of the site, one into another site, a root-owned directory.
    await fsp.symlink('/etc', path.join(docroot, 'to-etc'));
    const other = path.join(sandbox, 'var/www/other.test/public_html');
    await fsp.mkdir(other, { recursive: true });
    await fsp.symlink(other, path.join(docroot, 'to-other'));
    await fsp.mkdir(`${ftpRoot()}.evil/x`, { recursive: true });
    const before = readFileSync(userFile());
    const entries = async (): Promise<string[]> => (await fsp.readdir(docroot)).sort();
    const docrootBefore = await entries();

    const badNames = [
      'a:b',
      'evil\nroot:x:0:0::/:/bin/sh',
      'a/b',
      '-rf',
      '.hidden',
      '',
      'x'.repeat(65),
      'Alice',
      'аlice', // Cyrillic а
      'bob; rm -rf /',
      "x' OR '1'='1",
      'nul\0byte',
      'root',
      'www-data',
      'sp ace',
      '$(id)',
    ];
    for (const username of badNames) {
      const r = await call('create ftp user', { username, password: PW, home: docroot });
      assert.equal(r.ok ? 'ok' : r.error.code, 'invalid-argument', `username ${JSON.stringify(username)}`);
      assert.ok(!r.ok && r.error.message.length > 10);
    }
    const badHomes = [
      'relative/path',
      `${docroot}/../../other.test/public_html`,
      `${docroot}/./x`,
      `${docroot}//x`,
      `${docroot}/a:b`,
      `${docroot}/x\ny`,
      `${docroot}/x\0y`,
      `${docroot}/to-etc`,
      `${docroot}/to-etc/sub`,
      `${docroot}/to-other`,
      `${ftpRoot()}.evil/x`,
      ftpRoot(),
      path.join(sandbox, 'var/www'),
      path.join(sandbox, 'var/www/not-a-domain'),
      path.join(sandbox, 'var/www/no-such-site.test/public_html'),
      '/etc',
      '/',
      `${docroot}/${'x'.repeat(1100)}`,
    ];
    for (const home of badHomes) {
      const r = await call('create ftp user', { username: 'carol', password: PW, home });
      assert.equal(r.ok ? 'ok' : r.error.code, 'invalid-argument', `home ${JSON.stringify(home)}`);
    }
    for (const password of ['Qz7!k', 'line\nbreak-password', 'x'.repeat(129)]) {
      const r = await call('create ftp user', { username: 'carol', password, home: docroot });
      assert.equal(!r.ok && r.error.code, 'invalid-argument', 'bad password refused');
      assert.ok(!r.ok && !r.error.message.includes(password), 'the password is not echoed');
    }
    // Root-owned home: a precondition, not a syntax problem.
    await fsp.mkdir(path.join(docroot, 'root-owned'));
    const rootOwned = await call('create ftp user', {
      username: 'carol',
      password: PW,
      home: path.join(docroot, 'root-owned'),
    });
    assert.equal(!rootOwned.ok && rootOwned.error.code, 'failed-precondition');
    assert.match(!rootOwned.ok ? rootOwned.error.message : '', /owned by root/);
    await fsp.rmdir(path.join(docroot, 'root-owned'));
    const unknownField = await call('create ftp user', {
      username: 'carol',
      password: PW,
      home: docroot,
      uid: 0,
    } as never);
    assert.equal(!unknownField.ok && unknownField.error.code, 'invalid-argument');

    assert.deepEqual(readFileSync(userFile()), before, 'user file unchanged');
    assert.deepEqual(await entries(), docrootBefore, 'no directory created');
    assert.ok(!existsSync(path.join(ftpRoot() + '.evil', 'x', 'carol')));
    for (const l of ['to-etc', 'to-other']) await fsp.unlink(path.join(docroot, l));
  });

  test('hostile user names for set password / disable / enable / delete are refused, user file unchanged', async () => {
    const before = readFileSync(userFile());
    const hostile = [
      '..',
      '.',
      'a:b',
      'alice:x:0:0',
      'alice\n',
      'alice\nroot:x:0:0::/:/bin/sh',
      'alice\r',
      'alice\0',
      'nul\0byte',
      '-alice',
      '-rf',
      'x'.repeat(200),
      'x'.repeat(300),
      'ａｌｉｃｅ', // fullwidth
      'аlice', // Cyrillic а
      'alicе', // Cyrillic е
      'alice\u200b', // zero-width space
      'ALICE',
      'alice ',
      ' alice',
      '../alice',
      'a/b',
      'root',
      'www-data',
      'proftpd',
      'nobody',
      '',
    ];
    const NEW = 'a perfectly good new password';
    const events = [
      ['set ftp password', (username: string) => call('set ftp password', { username, password: NEW })],
      ['disable ftp user', (username: string) => call('disable ftp user', { username })],
      ['enable ftp user', (username: string) => call('enable ftp user', { username })],
      ['delete ftp user', (username: string) => call('delete ftp user', { username })],
    ] as const;
    for (const [event, send] of events) {
      for (const username of hostile) {
        const r = await send(username);
        const what = `${event} ${JSON.stringify(username)}`;
        assert.equal(r.ok ? 'ok' : r.error.code, 'invalid-argument', what);
        assert.ok(!r.ok && r.error.message.length > 10, `${what}: a reason a person can read`);
        assert.ok(!r.ok && !r.error.message.includes(NEW), `${what}: the password is not echoed`);
      }
    }
    assert.deepEqual(readFileSync(userFile()), before, 'user file byte-for-byte unchanged');
    // None of the look-alikes reached alice: her password, state and account are as they were.
    (await assertLoginWorks('alice', PW, 'alice untouched by the look-alikes')).close();
    await assertLoginRefused('alice', NEW, 'no look-alike changed her password');
  });

  test('a deleted website’s leftover tree and a hand-made directory under the web root are refused', async () => {
    const GONE = 'gone-site.test';
    const created = await call('create website', { domain: GONE });
    assert.ok(created.ok, JSON.stringify(created));
    const goneRoot = path.join(sandbox, 'var/www', GONE);
    const goneDocroot = path.join(goneRoot, 'public_html');
    // While the website exists, its tree is a valid home (the control for the refusals below).
    const ok = await call('create ftp user', { username: 'gina', password: PW, home: goneDocroot });
    assert.ok(ok.ok, JSON.stringify(ok));
    const deleted = await call('delete website', { domain: GONE });
    assert.ok(deleted.ok && !deleted.data.filesRemoved, JSON.stringify(deleted));
    assert.ok(existsSync(goneDocroot), 'the deleted website left its files');

    const handMade = path.join(sandbox, 'var/www/handmade.test/public_html');
    await fsp.mkdir(handMade, { recursive: true });
    const www = statSync(docroot);
    await fsp.chown(path.dirname(handMade), www.uid, www.gid);
    await fsp.chown(handMade, www.uid, www.gid);

    const before = readFileSync(userFile());
    const leftovers = [
      [goneRoot, GONE],
      [goneDocroot, GONE],
      [path.join(goneDocroot, 'new', 'sub'), GONE],
      [path.dirname(handMade), 'handmade.test'],
      [handMade, 'handmade.test'],
    ] as const;
    for (const [home, domain] of leftovers) {
      const r = await call('create ftp user', { username: 'hank', password: PW, home });
      assert.equal(r.ok ? 'ok' : r.error.code, 'invalid-argument', `home ${home}`);
      const dir = path.join(sandbox, 'var/www', domain);
      assert.equal(
        !r.ok && r.error.message.startsWith(`${dir} is not the tree of a website on this host`),
        true,
        `home ${home}: ${JSON.stringify(r)}`,
      );
    }
    assert.deepEqual(readFileSync(userFile()), before, 'user file byte-for-byte unchanged');
    assert.ok(!existsSync(path.join(goneDocroot, 'new')), 'no directory created in the leftover tree');
    // The user made while the site existed is kept (its files too), as a delete of a site keeps them.
    const list = await call('list ftp users', {});
    assert.ok(list.ok && list.data.users.some((u) => u.username === 'gina' && u.homeExists));
    assert.ok((await call('delete ftp user', { username: 'gina' })).ok);
  });

  test('uid/gid come from the site owner, not from the directory the home is in', async () => {
    const siteDir = path.dirname(docroot);
    const site = statSync(siteDir);
    assert.notEqual(site.uid, 0, 'the websites module made the site tree owned by the site user');
    const nobody = (await systemAccounts()).get('nobody');
    assert.ok(nobody && nobody.uid !== site.uid);
    const other = path.join(docroot, 'owned-by-nobody');
    await fsp.mkdir(other);
    await fsp.chown(other, nobody.uid, nobody.gid);
    try {
      for (const [username, home] of [
        ['ivan', other],
        ['judy', path.join(other, 'new')],
      ] as const) {
        const r = await call('create ftp user', { username, password: PW, home });
        assert.ok(r.ok, JSON.stringify(r));
        assert.deepEqual(
          [r.data.uid, r.data.gid],
          [site.uid, site.gid],
          `${username} acts as the site owner`,
        );
        assert.ok((await call('delete ftp user', { username })).ok);
      }
      assert.equal(
        statSync(path.join(other, 'new')).uid,
        site.uid,
        'a new home directory is the site owner’s',
      );
    } finally {
      await fsp.rm(other, { recursive: true, force: true });
    }
  });

  test('20 concurrent creates all land (no lost update)', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `team${String(i).padStart(2, '0')}`);
    const replies = await Promise.all(
      names.map((username) =>
        call('create ftp user', { username, password: PW, home: path.join(ftpRoot(), username) }),
      ),
    );
    for (const r of replies) assert.ok(r.ok, JSON.stringify(r));
    const list = await call('list ftp users', {});
    assert.ok(list.ok);
    const listed = new Set(list.data.users.map((u) => u.username));
    for (const n of names) assert.ok(listed.has(n), `${n} missing from the list`);
    const lines = readFileSync(userFile(), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('team'));
    assert.equal(lines.length, 20);
    (await assertLoginWorks('team07', PW, 'one of the concurrent users')).close();
  });

  test('deleted user refused, its files kept', async () => {
    const r = await call('delete ftp user', { username: 'alice' });
    assert.ok(r.ok, JSON.stringify(r));
    await assertLoginRefused('alice', PW, 'deleted user');
    assert.ok(existsSync(path.join(docroot, 'hello.txt')), 'files kept');
    const again = await call('delete ftp user', { username: 'alice' });
    assert.equal(!again.ok && again.error.code, 'not-found');
    const list = await call('list ftp users', {});
    assert.ok(list.ok && !list.data.users.some((u) => u.username === 'alice'));
  });

  test('a broken proftpd config makes changes fail with the checker output and roll back', async () => {
    const conf = path.join(sandbox, 'etc/proftpd/proftpd.conf');
    const good = readFileSync(conf);
    const before = readFileSync(userFile());
    await fsp.appendFile(conf, 'NoSuchDirective on\n');
    try {
      const r = await call('create ftp user', {
        username: 'dave',
        password: PW,
        home: path.join(ftpRoot(), 'dave'),
      });
      assert.equal(!r.ok && r.error.code, 'failed-precondition', JSON.stringify(r));
      assert.match(!r.ok ? r.error.message : '', /proftpd configuration test failed.*NoSuchDirective/s);
      assert.deepEqual(readFileSync(userFile()), before, 'user file restored');
      assert.equal(statSync(userFile()).mode & 0o777, 0o600);
      assert.ok(!existsSync(path.join(ftpRoot(), 'dave')), 'new home removed');
    } finally {
      await fsp.writeFile(conf, good);
    }
  });
});
