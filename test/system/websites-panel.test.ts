// Websites through the panel: REST API and the dashboard tab (no JavaScript, plain forms) against a
// real panel and a real sandbox agent whose private Apache serves the sites.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { fetchSite } from '../helpers/websites.ts';

const HOST = 'web-panel';
let t: TestPanel;
let sandbox: string;
let port: number;

interface Site {
  domain: string;
  enabled: boolean;
  managed: boolean;
  docroot: string | null;
}

before(async () => {
  requireRoot('the websites panel test');
  requireProgram('apache2', 'apache2');
  t = await startTestPanel();
  sandbox = (await t.addSandboxHost(HOST)).sandboxDir;
  const info = path.join(sandbox, 'run/apache.json');
  assert.ok(existsSync(info), 'sandbox Apache running');
  port = (JSON.parse(readFileSync(info, 'utf8')) as { port: number }).port;
});

after(async () => {
  await t?.close();
});

describe('websites through the panel', () => {
  const base = `/api/v1/hosts/${HOST}/websites`;

  test('REST: create, list, disable/enable, delete — served for real, every mutation audited', async () => {
    const created = await t.request<{ data: Site }>('POST', base, {
      body: { domain: 'api.test', aliases: ['www.api.test'] },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.data.domain, 'api.test');
    assert.equal(created.body.data.enabled, true);
    assert.equal((await fetchSite(port, 'www.api.test')).status, 200);

    const list = await t.request<{ data: { websites: Site[]; url?: string } }>('GET', base, {
      token: t.token('viewer'),
    });
    assert.equal(list.status, 200);
    assert.equal(list.body.data.url, `http://127.0.0.1:${port}/`);
    assert.ok(list.body.data.websites.some((w) => w.domain === 'api.test' && w.enabled && w.managed));

    const dup = await t.request<{ error: { code: string } }>('POST', base, { body: { domain: 'API.test' } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'already-exists');

    const off = await t.request<{ data: Site }>('POST', `${base}/api.test/disable`);
    assert.equal(off.status, 200, off.text);
    assert.equal(off.body.data.enabled, false);
    assert.equal((await fetchSite(port, 'api.test')).status, 404);
    const on = await t.request('POST', `${base}/api.test/enable`);
    assert.equal(on.status, 200);
    assert.equal((await fetchSite(port, 'api.test')).status, 200);

    const docroot = created.body.data.docroot!;
    const badFlag = await t.request('DELETE', `${base}/api.test?removeFiles=maybe`);
    assert.equal(badFlag.status, 400);
    assert.equal((await fetchSite(port, 'api.test')).status, 200, 'nothing deleted on a bad flag');
    const del = await t.request<{ data: { filesRemoved: boolean } }>(
      'DELETE',
      `${base}/api.test?removeFiles=true`,
    );
    assert.equal(del.status, 200, del.text);
    assert.equal(del.body.data.filesRemoved, true);
    assert.ok(!existsSync(docroot));
    assert.equal((await fetchSite(port, 'api.test')).status, 404);
    assert.equal((await t.request('DELETE', `${base}/api.test`)).status, 404);

    const rows = t.panel.ctx.audit.query({ hostId: HOST, limit: 100 }).rows;
    for (const action of ['create website', 'disable website', 'enable website', 'delete website'])
      assert.ok(
        rows.some((r) => r.action === action && r.ok === 1),
        `${action} audited`,
      );
    assert.ok(
      rows.some((r) => r.action === 'create website' && r.ok === 0 && r.error_code === 'already-exists'),
    );
  });

  test('REST: hostile names are a 400 with the reason; a viewer cannot change anything', async () => {
    for (const domain of ['test..com', 'a.test;reboot', '../../etc', 'a.test\nX']) {
      const bad = await t.request<{ error: { code: string; message: string } }>('POST', base, {
        body: { domain },
      });
      assert.equal(bad.status, 400, domain);
      assert.equal(bad.body.error.code, 'invalid-argument');
      assert.ok(bad.body.error.message.length > 10);
    }
    const enc = await t.request('POST', `${base}/${encodeURIComponent('../x.test')}/disable`);
    assert.ok(enc.status === 400 || enc.status === 404, String(enc.status));
    const viewer = await t.request('POST', base, {
      token: t.token('viewer'),
      body: { domain: 'viewer.test' },
    });
    assert.equal(viewer.status, 403);
    assert.ok(!existsSync(path.join(sandbox, 'var/www/viewer.test')));
    assert.equal((await fetchSite(port, 'viewer.test')).status, 404);
  });

  test('dashboard: create, disable, enable, delete (with confirmation) without JavaScript', async () => {
    const web = await t.signedIn('webop', 'operator');
    const tab = `/hosts/${HOST}/websites`;
    const page = await web.get(tab);
    assert.equal(page.status, 200);
    assert.match(page.text, /New website/);
    assert.match(page.text, new RegExp(`127\\.0\\.0\\.1:${port}`));

    const created = await web.submit(tab, `${tab}/create`, {
      domain: 'dash.test',
      aliases: 'www.dash.test, shop.dash.test',
      adminEmail: '',
    });
    assert.equal(created.status, 303);
    assert.equal((await fetchSite(port, 'shop.dash.test')).status, 200);
    const listed = await web.get(tab);
    assert.match(listed.text, /data-website="dash\.test"/);
    assert.match(listed.text, /created and enabled/);

    const refused = await web.submit(tab, `${tab}/create`, {
      domain: 'bad..name',
      aliases: '',
      adminEmail: '',
    });
    assert.equal(refused.status, 303);
    assert.match((await web.get(tab)).text, /empty label/);

    assert.equal((await web.submit(tab, `${tab}/dash.test/disable`, {})).status, 303);
    assert.equal((await fetchSite(port, 'dash.test')).status, 404);
    assert.equal((await web.submit(tab, `${tab}/dash.test/enable`, {})).status, 303);
    assert.equal((await fetchSite(port, 'dash.test')).status, 200);

    const noConfirm = await web.submit(tab, `${tab}/dash.test/delete`, { removeFiles: 'yes' });
    assert.equal(noConfirm.status, 303);
    assert.equal((await fetchSite(port, 'dash.test')).status, 200, 'not deleted without confirmation');
    const deleted = await web.submit(tab, `${tab}/dash.test/delete`, { confirm: 'yes' });
    assert.equal(deleted.status, 303);
    assert.equal((await fetchSite(port, 'dash.test')).status, 404);
    assert.ok(existsSync(path.join(sandbox, 'var/www/dash.test/public_html/index.html')), 'files kept');
    assert.ok(!(await web.get(tab)).text.includes('data-website="dash.test"'));
  });

  test('PHP: REST PUT …/php and the dashboard form turn it on, refuse bad settings, turn it off', async () => {
    const domain = `p${Math.random().toString(36).slice(2, 7)}.panelphp.test`;
    try {
      const c = await t.request<{ data: Site }>('POST', base, { body: { domain, php: '8.2' } });
      assert.equal(c.status, 201, c.text);
      await fsp.writeFile(
        path.join(sandbox, `var/www/${domain}/public_html/index.php`),
        '<?php echo "php:", PHP_VERSION;',
      );
      assert.match((await fetchSite(port, domain)).body, /^php:8\.2\./);
      const bad = await t.request<{ error: { code: string; message: string } }>(
        'PUT',
        `${base}/${domain}/php`,
        {
          body: { php: '8.2', phpSettings: { memoryLimitMb: '1G; evil' } },
        },
      );
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.body.error.code, 'invalid-argument');
      const viewer = await t.request('PUT', `${base}/${domain}/php`, {
        token: t.token('viewer'),
        body: { php: 'none' },
      });
      assert.equal(viewer.status, 403);
      const web = await t.signedIn('webphp', 'operator');
      const tab = `/hosts/${HOST}/websites`;
      const page = await web.get(tab);
      assert.match(page.text, /<option value="8\.2"/);
      const refused = await web.submit(tab, `${tab}/${domain}/php`, { php: '8.2', memoryLimitMb: '99999' });
      assert.equal(refused.status, 303);
      assert.match((await web.get(tab)).text, /memoryLimitMb/);
      const set = await web.submit(tab, `${tab}/${domain}/php`, { php: '8.2', memoryLimitMb: '77' });
      assert.equal(set.status, 303);
      await fsp.writeFile(
        path.join(sandbox, `var/www/${domain}/public_html/index.php`),
        '<?php echo ini_get("memory_limit");',
      );
      assert.equal((await fetchSite(port, domain)).body, '77M');
      assert.match((await web.get(tab)).text, /PHP 8\.2 is on for/);
      const off = await t.request<{ data: { php: unknown } }>('PUT', `${base}/${domain}/php`, {
        body: { php: 'none' },
      });
      assert.equal(off.status, 200, off.text);
      assert.equal(off.body.data.php, null);
      assert.equal((await fetchSite(port, domain, '/index.php')).status, 403, 'scripts are not sent as text');
    } finally {
      await t.request('DELETE', `${base}/${domain}?removeFiles=true`);
    }
  });

  test('overview: load, disk and the counts of sites, FTP users and databases come from the host', async () => {
    await t.request('POST', base, { body: { domain: 'count.test' } });
    const sites = await t.request<{ data: { websites: Site[] } }>('GET', base);
    const ftp = await t.request<{ data: { users: unknown[] } }>('GET', `/api/v1/hosts/${HOST}/ftp-users`);
    const dbs = await t.request<{ data: { databases: unknown[] } }>('GET', `/api/v1/hosts/${HOST}/databases`);
    assert.equal(ftp.status, 200, ftp.text);
    assert.equal(dbs.status, 200, dbs.text);
    const web = await t.signedIn('overviewer', 'viewer');
    const page = await web.get('/');
    assert.equal(page.status, 200);
    const row = new RegExp(`<tr[^>]*data-host-row="${HOST}"[\\s\\S]*?</tr>`).exec(page.text)?.[0] ?? '';
    const cell = (tab: string): string | undefined =>
      new RegExp(`href="/hosts/${HOST}/${tab}">(\\d+)<`).exec(row)?.[1];
    assert.ok(sites.body.data.websites.some((w) => w.domain === 'count.test'));
    assert.equal(cell('websites'), String(sites.body.data.websites.length), row);
    assert.equal(cell('ftp'), String(ftp.body.data.users.length), row);
    assert.equal(cell('mysql'), String(dbs.body.data.databases.length), row);
    assert.match(row, /<td>\d+\.\d{2}<\/td>/, 'load average');
    assert.match(row, /<td[^>]*>\d{1,3} %<\/td>/, 'root disk use');
    assert.match(row, /data-host-state="web-panel"[^>]*>online</);
  });
});
