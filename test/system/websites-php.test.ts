// PHP per site against the real parts: a sandbox agent (in-process, agent/main.ts) with its
// private Apache and its private php-fpm master, driven over the real mutual-TLS RPC path. Every
// check that matters is an HTTP request to that Apache, which hands .php to the site's own pool.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { siteUserName } from '../../agent/modules/websites/php-pool.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { fetchSite, hashTree, portOf } from '../helpers/websites.ts';

const HOST = 'php1';
// Unique per run: the site users are real users of this machine.
const tag = Math.random().toString(36).slice(2, 7);
const A = `a${tag}.phptest.test`;
const B = `b${tag}.phptest.test`;
const C = `c${tag}.phptest.test`;
let pki: TestPki;
let agent: RunningAgent;
let m: ConnectionManager;
let sandbox: string;
let port: number;

const sb = (rel: string): string => path.join(sandbox, rel);
const docroot = (d: string): string => sb(`var/www/${d}/public_html`);
const poolFile = (d: string): string => sb(`etc/php/8.2/fpm/pool.d/${siteUserName(d)}.conf`);
const hooksFile = (): string => sb('var/lib/ponio-agent/websites-test-hooks.json');

function passwdHas(user: string): boolean {
  return execFileSync('getent', ['passwd'], { encoding: 'utf8' })
    .split('\n')
    .some((l) => l.startsWith(`${user}:`));
}

async function digest(): Promise<string> {
  const siteLog = (rel: string): boolean => /\/logs\/[^/]+\.log$/.test(rel);
  const parts = await Promise.all(
    [sb('etc/apache2'), sb('etc/php'), sb('var/www')].map((d) => hashTree(d, () => false, siteLog)),
  );
  const users = execFileSync('getent', ['passwd'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('phptest'))
    .sort()
    .join('\n');
  return `${parts.join(':')}|${users}`;
}

async function call<E extends EventName>(event: E, params: RequestIn<E>) {
  return m.call(HOST, event, params);
}

/** Writes a file into a site's docroot as the site's own user (as FTP or the site's PHP would). */
async function put(domain: string, name: string, content: string): Promise<void> {
  const dir = docroot(domain);
  const st = await fsp.stat(dir);
  const file = path.join(dir, name);
  await fsp.writeFile(file, content, { mode: 0o644 });
  await fsp.chown(file, st.uid, st.gid);
}

before(async () => {
  requireProgram('apache2', 'apache2');
  requireProgram('php-fpm8.2', 'php8.2-fpm');
  requireRoot('the PHP per site system test');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-php-'));
  const cfg = loadAgentConfig(
    { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
    {},
  );
  agent = await startAgent(cfg, quietLogger);
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  await m.waitForState(HOST, 'online');
  const list = await call('list websites', {});
  assert.ok(list.ok, JSON.stringify(list));
  port = portOf(list.data.url);
  assert.deepEqual(list.data.phpVersions, ['8.2'], 'php8.2-fpm is offered');
});

after(async () => {
  for (const d of [A, B, C]) await call('delete website', { domain: d, removeFiles: true }).catch(() => null);
  await m?.close();
  await agent?.stop();
  // Never leave users behind on this machine, whatever failed above.
  for (const d of [A, B, C]) {
    const u = siteUserName(d);
    if (passwdHas(u)) execFileSync('userdel', [u]);
  }
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
});

describe('PHP per site on a real Apache and php-fpm', () => {
  test('a PHP site runs index.php as its own user, in its own tree', async () => {
    const r = await call('create website', { domain: A, php: '8.2', phpSettings: { memoryLimitMb: 96 } });
    assert.ok(r.ok, JSON.stringify(r));
    const user = siteUserName(A);
    assert.equal(r.data.owner, user);
    assert.equal(r.data.php?.version, '8.2');
    assert.equal(r.data.php?.poolFile, poolFile(A));
    assert.deepEqual(r.data.php?.settings, { memoryLimitMb: 96 });
    // The user: no shell, home = the site directory, PonIO's mark in GECOS.
    const entry = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).trim().split(':');
    assert.equal(entry[4], `PonIO site ${A}`);
    assert.equal(entry[5], sb(`var/www/${A}`));
    assert.equal(entry[6], '/usr/sbin/nologin');
    const shadow = execFileSync('getent', ['shadow', user], { encoding: 'utf8' }).split(':')[1] ?? '';
    assert.match(shadow, /^[!*]/, 'no password');
    // The files are the site's.
    const site = await fsp.stat(sb(`var/www/${A}`));
    assert.equal(site.uid, Number(entry[2]));
    assert.equal(site.mode & 0o777, 0o750);
    await put(
      A,
      'index.php',
      '<?php echo "user=", posix_getpwuid(posix_geteuid())["name"], " mem=", ini_get("memory_limit"), " basedir=", ini_get("open_basedir");',
    );
    const res = await fetchSite(port, A);
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, new RegExp(`^user=${user} mem=96M basedir=${docroot(A)}/:`));
    // A file written by the site's PHP belongs to the site.
    await put(A, 'w.php', '<?php file_put_contents(__DIR__ . "/made.txt", "x"); echo "ok";');
    assert.equal((await fetchSite(port, A, '/w.php')).body, 'ok');
    assert.equal((await fsp.stat(path.join(docroot(A), 'made.txt'))).uid, Number(entry[2]));
  });

  test("site A's PHP cannot read site B's files (open_basedir, and the tree's owner and mode)", async () => {
    const r = await call('create website', { domain: B, php: '8.2' });
    assert.ok(r.ok, JSON.stringify(r));
    await put(B, 'secret.txt', 'B-SECRET');
    const target = path.join(docroot(B), 'secret.txt');
    await put(
      A,
      'steal.php',
      `<?php $a = @file_get_contents(${JSON.stringify(target)}); $b = shell_exec("cat " . escapeshellarg(${JSON.stringify(target)}) . " 2>&1"); echo "fgc=", var_export($a, true), " shell=", trim((string)$b);`,
    );
    const res = await fetchSite(port, A, '/steal.php');
    assert.equal(res.status, 200, res.body);
    assert.doesNotMatch(res.body, /B-SECRET/);
    assert.match(res.body, /fgc=false/);
    assert.match(res.body, /shell=.*Permission denied/);
    // B itself reads it.
    await put(B, 'own.php', `<?php echo file_get_contents(${JSON.stringify(target)});`);
    assert.equal((await fetchSite(port, B, '/own.php')).body, 'B-SECRET');
  });

  test('bad PHP settings and versions are refused with nothing changed', async () => {
    const before = await digest();
    const bad: Array<[string, unknown]> = [
      ['php', { domain: A, php: '9.9' }],
      ['php', { domain: A, php: '8.2; rm -rf /' }],
      [
        'settings',
        { domain: A, php: '8.2', phpSettings: { memoryLimitMb: '128M\nphp_admin_value[open_basedir]=/' } },
      ],
      ['settings', { domain: A, php: '8.2', phpSettings: { memoryLimitMb: 10 ** 9 } }],
      ['settings', { domain: A, php: '8.2', phpSettings: { maxChildren: -1 } }],
      ['settings', { domain: A, php: '8.2', phpSettings: { open_basedir: '/' } }],
      ['settings', { domain: A, php: 'none', phpSettings: { memoryLimitMb: 64 } }],
      ['domain', { domain: '../etc', php: '8.2' }],
    ];
    for (const [what, params] of bad) {
      const r = await call('set website php', params as RequestIn<'set website php'>);
      assert.equal(r.ok, false, `${what} ${JSON.stringify(params)}`);
      if (!r.ok) {
        assert.equal(r.error.code, 'invalid-argument', JSON.stringify(r.error));
        assert.ok(r.error.message.length > 10);
      }
    }
    const c = await call('create website', { domain: C, php: '7.4' });
    assert.equal(c.ok, false);
    if (!c.ok) assert.match(c.error.message, /PHP 7\.4 is not installed on this host \(installed: 8\.2\)/);
    // A pool php-fpm refuses (test hook): php-fpm -t fails, everything is put back.
    await fsp.writeFile(hooksFile(), JSON.stringify({ corruptPool: [A, C] }));
    try {
      const r = await call('set website php', { domain: A, php: '8.2', phpSettings: { memoryLimitMb: 200 } });
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.error.code, 'failed-precondition');
        assert.match(
          r.error.message,
          /php-fpm config test failed: .*unknown entry 'ponio_deliberately_invalid_entry'/s,
        );
      }
      const rc = await call('create website', { domain: C, php: '8.2' });
      assert.equal(rc.ok, false, JSON.stringify(rc));
      assert.equal(passwdHas(siteUserName(C)), false, 'the refused create left no user');
    } finally {
      await fsp.rm(hooksFile(), { force: true });
    }
    assert.equal(await digest(), before);
    assert.match((await fetchSite(port, A)).body, /^user=/, 'A still runs its PHP');
  });

  test('settings change, PHP off (scripts are not sent as text), on again', async () => {
    let r = await call('set website php', { domain: A, php: '8.2', phpSettings: { memoryLimitMb: 64 } });
    assert.ok(r.ok, JSON.stringify(r));
    assert.match((await fetchSite(port, A)).body, /mem=64M/);
    r = await call('set website php', { domain: A, php: 'none' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.data.php, null);
    assert.equal(r.data.owner, siteUserName(A), 'the files stay the site user’s');
    await assert.rejects(fsp.stat(poolFile(A)));
    const res = await fetchSite(port, A, '/index.php');
    assert.equal(res.status, 403);
    assert.doesNotMatch(res.body, /posix_getpwuid/);
    r = await call('set website php', { domain: A, php: '8.2' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.match((await fetchSite(port, A)).body, /mem=128M/);
  });

  test('PHP turned on for a site www-data owned: its files become the site user’s', async () => {
    const r0 = await call('create website', { domain: C });
    assert.ok(r0.ok, JSON.stringify(r0));
    assert.equal((await fsp.stat(sb(`var/www/${C}`))).uid, 33);
    const r = await call('set website php', { domain: C, php: '8.2' });
    assert.ok(r.ok, JSON.stringify(r));
    const uid = Number(execFileSync('id', ['-u', siteUserName(C)], { encoding: 'utf8' }));
    assert.equal((await fsp.stat(path.join(docroot(C), 'index.html'))).uid, uid);
    assert.equal((await fsp.stat(sb(`var/www/${C}/logs`))).uid, 0, 'logs stay root’s');
    assert.match((await fetchSite(port, C)).body, /ponio-placeholder/);
  });

  test('delete removes the pool, the socket and the user', async () => {
    const user = siteUserName(B);
    assert.ok(passwdHas(user));
    const r = await call('delete website', { domain: B, removeFiles: true });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(passwdHas(user), false);
    await assert.rejects(fsp.stat(poolFile(B)));
    await assert.rejects(fsp.stat(sb(`run/php/${user}.php8.2.sock`)));
    // Kept files go back to www-data (no file is left to a uid nobody has).
    const rc = await call('delete website', { domain: C });
    assert.ok(rc.ok, JSON.stringify(rc));
    assert.equal((await fsp.stat(path.join(docroot(C), 'index.html'))).uid, 33);
    assert.equal(passwdHas(siteUserName(C)), false);
    await fsp.rm(sb(`var/www/${C}`), { recursive: true });
    assert.match((await fetchSite(port, A)).body, /^user=/, 'A is still served');
  });
});
