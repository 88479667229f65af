// Websites against a real Apache: a sandbox agent (started in-process through agent/main.ts) with
// its private apache2 on a loopback port, driven over the real mutual-TLS RPC path by the panel's
// connection manager. Every check that matters is an HTTP request to that Apache.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { fetchSite, hashTree, portOf } from '../helpers/websites.ts';

const HOST = 'web1';
let pki: TestPki;
let agent: RunningAgent;
let m: ConnectionManager;
let sandbox: string;
let port: number;
let apache2: string;

const sitesDirs = (): string[] => [path.join(sandbox, 'etc/apache2'), path.join(sandbox, 'var/www')];
const mainConf = (): string => path.join(sandbox, 'etc/apache2/apache2.conf');
const hooksFile = (): string => path.join(sandbox, 'var/lib/ponio-agent/websites-test-hooks.json');

/** Per-site logs: Apache appends to them after a response is sent, so only their presence counts. */
const siteLog = (rel: string): boolean => /^[^/]+\/logs\/[^/]+\.log$/.test(rel);

/** Digest of everything the websites module may write (config + site trees). */
async function sitesDigest(): Promise<string> {
  const parts = await Promise.all(sitesDirs().map((d) => hashTree(d, () => false, siteLog)));
  return parts.join(':');
}

async function call<E extends EventName>(event: E, params: RequestIn<E>) {
  return m.call(HOST, event, params);
}

async function create(domain: string, extra: Partial<RequestIn<'create website'>> = {}) {
  const r = await call('create website', { domain, ...extra });
  assert.ok(r.ok, `create ${domain}: ${JSON.stringify(r)}`);
  return r.data;
}

const get = (host: string) => fetchSite(port, host);

function configTestOk(): void {
  // Apache's own checker on the on-disk config (throws with its output when it fails).
  execFileSync(apache2, ['-t', '-f', mainConf()], { stdio: 'pipe' });
}

before(async () => {
  apache2 = requireProgram('apache2', 'apache2');
  requireRoot('the websites system test');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-web-'));
  const cfg = loadAgentConfig(
    { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
    {},
  );
  agent = await startAgent(cfg, quietLogger);
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  const st = await m.waitForState(HOST, 'online');
  const mod = st.hello?.modules.find((x) => x.name === 'websites');
  assert.deepEqual(
    mod,
    { name: 'websites', available: true, service: { service: 'apache2', state: 'running', restarts: 0 } },
    'websites module available, its private Apache running',
  );
  const list = await call('list websites', {});
  assert.ok(list.ok, JSON.stringify(list));
  port = portOf(list.data.url);
});

after(async () => {
  await m?.close();
  await agent?.stop();
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
});

describe('websites on a real Apache', () => {
  test('an unknown Host: gets 404 from the sandbox default vhost', async () => {
    assert.equal((await get('nobody.test')).status, 404);
  });

  test('a created site is served with its placeholder page at its Host: name and aliases', async () => {
    const site = await create('alpha.test', { aliases: ['www.alpha.test'], adminEmail: 'admin@alpha.test' });
    assert.equal(site.domain, 'alpha.test');
    assert.equal(site.enabled, true);
    assert.equal(site.managed, true);
    assert.deepEqual(site.aliases, ['www.alpha.test']);
    assert.equal(site.adminEmail, 'admin@alpha.test');
    assert.equal(site.docroot, path.join(sandbox, 'var/www/alpha.test/public_html'));
    for (const host of ['alpha.test', 'www.alpha.test', 'ALPHA.test']) {
      const res = await get(host);
      assert.equal(res.status, 200, host);
      assert.match(res.body, /<!-- ponio-placeholder alpha\.test -->/);
    }
    assert.equal((await get('beta.alpha.test')).status, 404);
    // Owned by www-data (the FTP module derives its users' uid/gid from the site directory).
    const st = await fsp.stat(path.join(sandbox, 'var/www/alpha.test'));
    const idx = await fsp.stat(path.join(sandbox, 'var/www/alpha.test/public_html/index.html'));
    assert.equal(st.uid, 33);
    assert.equal(idx.uid, 33);
    // Per-site logs: the request above was logged there.
    const access = await fsp.readFile(path.join(sandbox, 'var/www/alpha.test/logs/access.log'), 'utf8');
    assert.match(access, /"GET \/ HTTP\/1\.1" 200/);
    const vhost = await fsp.readFile(
      path.join(sandbox, 'etc/apache2/sites-available/alpha.test.conf'),
      'utf8',
    );
    assert.match(vhost, /^# Managed by PonIO/);
    assert.equal(
      await fsp.readlink(path.join(sandbox, 'etc/apache2/sites-enabled/alpha.test.conf')),
      '../sites-available/alpha.test.conf',
    );
    configTestOk();
    const list = await call('list websites', {});
    assert.ok(list.ok);
    const listed = list.data.websites.find((w) => w.domain === 'alpha.test');
    assert.equal(listed?.enabled, true);
    assert.equal(listed?.managed, true);
  });

  test('an internationalised name is stored and served as punycode', async () => {
    const site = await create('bücher.test');
    assert.equal(site.domain, 'xn--bcher-kva.test');
    const res = await get('xn--bcher-kva.test');
    assert.equal(res.status, 200);
    assert.match(res.body, /<h1>bücher\.test<\/h1>/);
  });

  test('creating an existing site → already-exists; acting on a missing one → not-found', async () => {
    const before = await sitesDigest();
    const again = await call('create website', { domain: 'alpha.test' });
    assert.equal(!again.ok && again.error.code, 'already-exists');
    // Unicode look-alikes are mapped (UTS #46) onto the name they imitate, so they collide;
    // an ideographic full stop is not a dot.
    for (const [lookalike, code] of [
      ['ＡＬＰＨＡ.test', 'already-exists'],
      ['\u{1d41a}lpha.test', 'already-exists'],
      ['alpha\u3002test', 'invalid-argument'],
    ] as const) {
      const r = await call('create website', { domain: lookalike });
      assert.equal(!r.ok && r.error.code, code, lookalike);
    }
    const alias = await call('create website', { domain: 'other.test', aliases: ['www.alpha.test'] });
    assert.equal(!alias.ok && alias.error.code, 'already-exists');
    assert.match(!alias.ok ? alias.error.message : '', /www\.alpha\.test is already served by/);
    for (const event of ['enable website', 'disable website', 'delete website'] as const) {
      const r = await call(event, { domain: 'missing.test' });
      assert.equal(!r.ok && r.error.code, 'not-found', event);
    }
    assert.equal(await sitesDigest(), before);
  });

  test('disable → no longer served (files kept); enable → served again', async () => {
    const off = await call('disable website', { domain: 'alpha.test' });
    assert.ok(off.ok, JSON.stringify(off));
    assert.equal(off.data.enabled, false);
    assert.equal((await get('alpha.test')).status, 404);
    assert.equal((await get('www.alpha.test')).status, 404);
    await fsp.access(path.join(sandbox, 'var/www/alpha.test/public_html/index.html'));
    const list = await call('list websites', {});
    assert.equal(list.ok && list.data.websites.find((w) => w.domain === 'alpha.test')?.enabled, false);
    const twice = await call('disable website', { domain: 'alpha.test' });
    assert.ok(twice.ok, 'disabling a disabled site is a no-op');
    const on = await call('enable website', { domain: 'alpha.test' });
    assert.ok(on.ok, JSON.stringify(on));
    assert.equal(on.data.enabled, true);
    const res = await get('alpha.test');
    assert.equal(res.status, 200);
    assert.match(res.body, /ponio-placeholder alpha\.test/);
  });

  test('delete → gone; files removed only when asked', async () => {
    await create('beta.test');
    await create('gamma.test');
    await fsp.writeFile(path.join(sandbox, 'var/www/beta.test/public_html/index.html'), 'my own page\n');
    const keep = await call('delete website', { domain: 'beta.test' });
    assert.deepEqual(keep.ok && keep.data, { domain: 'beta.test', filesRemoved: false });
    assert.equal((await get('beta.test')).status, 404);
    await assert.rejects(fsp.access(path.join(sandbox, 'etc/apache2/sites-available/beta.test.conf')));
    await assert.rejects(fsp.lstat(path.join(sandbox, 'etc/apache2/sites-enabled/beta.test.conf')));
    assert.equal(
      await fsp.readFile(path.join(sandbox, 'var/www/beta.test/public_html/index.html'), 'utf8'),
      'my own page\n',
    );
    const rm = await call('delete website', { domain: 'gamma.test', removeFiles: true });
    assert.deepEqual(rm.ok && rm.data, { domain: 'gamma.test', filesRemoved: true });
    assert.equal((await get('gamma.test')).status, 404);
    await assert.rejects(fsp.access(path.join(sandbox, 'var/www/gamma.test')));
    const list = await call('list websites', {});
    assert.ok(list.ok);
    const domains = list.data.websites.map((w) => w.domain);
    assert.ok(!domains.includes('beta.test') && !domains.includes('gamma.test'), domains.join(','));
    // Re-creating a site whose files were kept reuses them (the page is not overwritten).
    await create('beta.test');
    assert.equal((await get('beta.test')).body, 'my own page\n');
    configTestOk();
  });

  test('delete with removeFiles refuses a symlinked site dir before changing anything', async () => {
    await create('delta.test');
    const siteDir = path.join(sandbox, 'var/www/delta.test');
    const outside = mkdtempSync(path.join(os.tmpdir(), 'ponio-outside-'));
    await fsp.chmod(outside, 0o755); // Apache's workers must traverse it to keep serving the site
    await fsp.rename(siteDir, path.join(outside, 'tree'));
    await fsp.symlink(path.join(outside, 'tree'), siteDir);
    try {
      const before = await sitesDigest();
      const r = await call('delete website', { domain: 'delta.test', removeFiles: true });
      assert.equal(r.ok, false);
      // The path guard refuses the tree that resolves outside the web root.
      assert.equal(!r.ok && r.error.code, 'invalid-argument');
      assert.match(!r.ok ? r.error.message : '', /Path refused: path escapes .* through a symlink/);
      assert.equal(await sitesDigest(), before, 'vhost, link and tree unchanged');
      await fsp.access(path.join(outside, 'tree/public_html/index.html'));
      assert.equal((await get('delta.test')).status, 200, 'still served');
    } finally {
      await fsp.unlink(siteDir);
      await fsp.rename(path.join(outside, 'tree'), siteDir);
      await fsp.rm(outside, { recursive: true, force: true });
    }
    const rm = await call('delete website', { domain: 'delta.test', removeFiles: true });
    assert.ok(rm.ok, JSON.stringify(rm));
  });

  test('a vhost Apache refuses is rolled back; every other site keeps being served', async () => {
    await fsp.writeFile(hooksFile(), JSON.stringify({ corruptVhost: ['broken.test'] }));
    try {
      const before = await sitesDigest();
      const r = await call('create website', { domain: 'broken.test' });
      assert.equal(!r.ok && r.error.code, 'failed-precondition');
      assert.match(
        !r.ok ? r.error.message : '',
        /^Apache config test failed: .*PonioDeliberatelyInvalidDirective/s,
      );
      assert.equal(await sitesDigest(), before, 'config and site trees byte-for-byte unchanged');
    } finally {
      await fsp.rm(hooksFile(), { force: true });
    }
    configTestOk();
    assert.equal((await get('alpha.test')).status, 200);
    assert.equal((await get('beta.test')).status, 200);
    assert.equal((await get('broken.test')).status, 404);
    const list = await call('list websites', {});
    assert.ok(list.ok && !list.data.websites.some((w) => w.domain === 'broken.test'));
  });

  test('a reload failure after the vhost went live is restored and reloaded again', async () => {
    await fsp.writeFile(hooksFile(), JSON.stringify({ failReload: ['late.test'] }));
    try {
      const before = await sitesDigest();
      const r = await call('create website', { domain: 'late.test' });
      assert.equal(!r.ok && r.error.code, 'failed-precondition');
      assert.match(!r.ok ? r.error.message : '', /^Apache did not reload: reload failure injected/);
      assert.equal(await sitesDigest(), before);
    } finally {
      await fsp.rm(hooksFile(), { force: true });
    }
    assert.equal((await get('late.test')).status, 404);
    assert.equal((await get('alpha.test')).status, 200);
  });

  test('a failed reload on disable, enable or delete restores the previous state', async () => {
    const hooks = (domains: string[]): Promise<void> =>
      fsp.writeFile(hooksFile(), JSON.stringify({ failReload: domains }));
    try {
      await hooks(['alpha.test']);
      let before = '';
      for (const event of ['disable website', 'delete website'] as const) {
        before = await sitesDigest(); // (each GET below appends to the site's access log)
        const r =
          event === 'delete website'
            ? await call(event, { domain: 'alpha.test', removeFiles: true })
            : await call(event, { domain: 'alpha.test' });
        assert.equal(!r.ok && r.error.code, 'failed-precondition', event);
        assert.match(!r.ok ? r.error.message : '', /^Apache did not reload/);
        assert.equal(await sitesDigest(), before, `${event}: restored`);
        assert.equal((await get('alpha.test')).status, 200, `${event}: still served`);
      }
      await hooks([]);
      assert.ok((await call('disable website', { domain: 'alpha.test' })).ok);
      await hooks(['alpha.test']);
      before = await sitesDigest();
      const on = await call('enable website', { domain: 'alpha.test' });
      assert.equal(!on.ok && on.error.code, 'failed-precondition');
      assert.equal(await sitesDigest(), before, 'enable: restored');
      assert.equal((await get('alpha.test')).status, 404, 'enable: still not served');
    } finally {
      await fsp.rm(hooksFile(), { force: true });
    }
    assert.ok((await call('enable website', { domain: 'alpha.test' })).ok);
    assert.equal((await get('alpha.test')).status, 200);
    configTestOk();
  });

  test('hostile input → invalid-argument, the sites directories byte-for-byte unchanged', async () => {
    const before = await sitesDigest();
    const long = `${'a'.repeat(63)}.`.repeat(5) + 'test';
    const hostileDomains: unknown[] = [
      '',
      'test..com',
      '.alpha.test',
      'alpha.test.',
      '-a.test',
      'a-.test',
      'localhost',
      '127.0.0.1',
      '::1',
      '[::1]',
      'a.123',
      'exa mple.test',
      'alpha.test\n',
      'alpha.test\nInclude /etc/shadow',
      'al\u0000pha.test',
      'a.test;rm -rf /',
      '$(reboot).test',
      '`id`.test',
      "a'b.test",
      'a"b.test',
      'a_b.test',
      '../etc/passwd',
      '../../etc/apache2/apache2.conf',
      'sites-available/../x.test',
      'a.test/../../x',
      'a\\b.test',
      '%2e%2e.test',
      'a.test:80',
      'user@a.test',
      '<VirtualHost>.test',
      "a.test' OR 1=1 --",
      'a\u2028.test',
      'a\u202e.test',
      `${'a'.repeat(64)}.test`,
      long,
      'x'.repeat(100_000),
      '*.alpha.test',
      'alpha.test}',
      '${PONIO_HTTP_PORT}.test',
      42,
      null,
      ['alpha.test'],
      { domain: 'x.test' },
    ];
    for (const domain of hostileDomains) {
      for (const event of [
        'create website',
        'enable website',
        'disable website',
        'delete website',
      ] as const) {
        const r = await call(event, { domain } as never);
        assert.equal(
          !r.ok && r.error.code,
          'invalid-argument',
          `${event} ${JSON.stringify(domain)?.slice(0, 60)}`,
        );
        assert.ok(!r.ok && r.error.message.length > 5 && !r.error.message.includes('\n'));
      }
    }
    const hostileOther: Array<Record<string, unknown>> = [
      { domain: 'ok.test', aliases: ['ok2.test', 'a..b.test'] },
      { domain: 'ok.test', aliases: ['bad alias.test'] },
      { domain: 'ok.test', aliases: 'www.ok.test' },
      { domain: 'ok.test', aliases: Array.from({ length: 51 }, (_, i) => `a${i}.ok.test`) },
      { domain: 'ok.test', aliases: ['ok.test'] },
      { domain: 'ok.test', aliases: ['www.ok.test', 'www.ok.test'] },
      { domain: 'ok.test', adminEmail: 'admin@ok.test\nInclude /etc/shadow' },
      { domain: 'ok.test', adminEmail: 'a"b@ok.test' },
      { domain: 'ok.test', adminEmail: 'admin@ok.test>' },
      { domain: 'ok.test', adminEmail: 'not-an-email' },
      { domain: 'ok.test', adminEmail: `${'a'.repeat(250)}@ok.test` },
      { domain: 'ok.test', docroot: '/etc' },
      { domain: 'ok.test', requestId: 'not-a-uuid' },
      { domain: 'ok.test', removeFiles: true },
    ];
    for (const params of hostileOther) {
      const r = await call('create website', params as never);
      assert.equal(!r.ok && r.error.code, 'invalid-argument', JSON.stringify(params).slice(0, 80));
    }
    const del = await call('delete website', { domain: 'alpha.test', removeFiles: 'yes' } as never);
    assert.equal(!del.ok && del.error.code, 'invalid-argument');
    assert.equal(await sitesDigest(), before, 'nothing changed on the host');
    assert.equal((await get('ok.test')).status, 404);
    assert.equal((await get('alpha.test')).status, 200);
  });

  test('a retried create with the same requestId acts once (end to end)', async () => {
    const requestId = randomUUID();
    const [a, b] = await Promise.all([
      call('create website', { domain: 'idem.test', requestId }),
      call('create website', { domain: 'idem.test', requestId }),
    ]);
    assert.ok(a.ok && b.ok, `${JSON.stringify(a)} ${JSON.stringify(b)}`);
    assert.deepEqual(a, b);
    const retry = await call('create website', { domain: 'idem.test', requestId });
    assert.deepEqual(retry, a, 'a later retry gets the first reply');
    const fresh = await call('create website', { domain: 'idem.test', requestId: randomUUID() });
    assert.equal(!fresh.ok && fresh.error.code, 'already-exists', 'a new request does act (and is refused)');
    assert.equal((await get('idem.test')).status, 200);
    const delId = randomUUID();
    const d1 = await call('delete website', { domain: 'idem.test', requestId: delId, removeFiles: true });
    const d2 = await call('delete website', { domain: 'idem.test', requestId: delId, removeFiles: true });
    assert.ok(d1.ok && d2.ok);
    assert.deepEqual(d1, d2);
  });

  test('a vhost PonIO did not write is listed read-only and never changed', async () => {
    const conf = path.join(sandbox, 'etc/apache2/sites-available/hand.test.conf');
    const legacy = path.join(sandbox, 'etc/apache2/sites-available/legacy.conf');
    const handText = `# written by hand\n<VirtualHost *:\${PONIO_HTTP_PORT}>\n    ServerName hand.test\n    ServerAlias www.hand.test\n    Redirect 410 /\n</VirtualHost>\n`;
    const legacyText = `<VirtualHost *:\${PONIO_HTTP_PORT}>\n    ServerName legacy-site.test\n    Redirect 410 /\n</VirtualHost>\n`;
    await fsp.writeFile(conf, handText);
    await fsp.writeFile(legacy, legacyText);
    await fsp.symlink(
      '../sites-available/hand.test.conf',
      path.join(sandbox, 'etc/apache2/sites-enabled/hand.test.conf'),
    );
    try {
      const list = await call('list websites', {});
      assert.ok(list.ok);
      const hand = list.data.websites.find((w) => w.domain === 'hand.test');
      assert.equal(hand?.managed, false);
      assert.equal(hand?.enabled, true);
      assert.deepEqual(hand?.aliases, ['www.hand.test']);
      const leg = list.data.websites.find((w) => w.domain === 'legacy-site.test');
      assert.equal(leg?.managed, false);
      assert.equal(leg?.enabled, false);
      const before = await sitesDigest();
      const c = await call('create website', { domain: 'hand.test' });
      assert.equal(!c.ok && c.error.code, 'already-exists');
      const c2 = await call('create website', { domain: 'legacy-site.test' });
      assert.equal(!c2.ok && c2.error.code, 'already-exists');
      const c3 = await call('create website', { domain: 'new.test', aliases: ['www.hand.test'] });
      assert.equal(!c3.ok && c3.error.code, 'already-exists');
      for (const event of ['enable website', 'disable website', 'delete website'] as const) {
        for (const domain of ['hand.test', 'legacy-site.test']) {
          const r = await call(event, { domain });
          assert.equal(!r.ok && r.error.code, 'failed-precondition', `${event} ${domain}`);
          assert.match(!r.ok ? r.error.message : '', /PonIO did not write/);
        }
      }
      assert.equal(await sitesDigest(), before);
    } finally {
      await fsp.rm(path.join(sandbox, 'etc/apache2/sites-enabled/hand.test.conf'), { force: true });
      await fsp.rm(conf, { force: true });
      await fsp.rm(legacy, { force: true });
    }
  });
});
