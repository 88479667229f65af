// FTP through the panel: REST API and the dashboard tab (no JavaScript, plain forms) against a real
// panel and a real sandbox agent whose private proftpd accepts the logins.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, FTPError } from 'basic-ftp';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';

const HOST = 'ftp-panel';
let t: TestPanel;
let sandbox: string;
let ftpPort: number;

async function ftpLogin(user: string, password: string): Promise<true | number> {
  const c = new Client(10_000);
  try {
    await c.access({ host: '127.0.0.1', port: ftpPort, user, password });
    return true;
  } catch (e) {
    if (e instanceof FTPError) return e.code;
    throw e;
  } finally {
    c.close();
  }
}

const unescapeHtml = (s: string): string =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

before(async () => {
  requireRoot('the FTP panel test');
  requireProgram('proftpd', 'proftpd-core');
  t = await startTestPanel();
  sandbox = (await t.addSandboxHost(HOST)).sandboxDir;
  const info = path.join(sandbox, 'run/proftpd.json');
  assert.ok(existsSync(info), 'sandbox proftpd running');
  ftpPort = (JSON.parse(readFileSync(info, 'utf8')) as { port: number }).port;
});

after(async () => {
  await t?.close();
});

describe('FTP users through the panel', () => {
  const base = `/api/v1/hosts/${HOST}/ftp-users`;
  const home = (u: string): string => path.join(sandbox, 'srv/ftp', u);

  test('REST: create, list, password, disable/enable, delete — with real logins and a redacted audit', async () => {
    const PW = 'api password 1';
    const created = await t.request('POST', base, {
      body: { username: 'apiuser', password: PW, home: home('apiuser') },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal((created.body as { data: { username: string } }).data.username, 'apiuser');
    assert.equal(await ftpLogin('apiuser', PW), true);

    const list = await t.request<{ data: { users: { username: string; enabled: boolean }[] } }>('GET', base, {
      token: t.token('viewer'),
    });
    assert.equal(list.status, 200);
    assert.ok(list.body.data.users.some((u) => u.username === 'apiuser' && u.enabled));

    const NEW = 'api password 2';
    const pw = await t.request('PUT', `${base}/apiuser/password`, { body: { password: NEW } });
    assert.equal(pw.status, 200, pw.text);
    assert.equal(await ftpLogin('apiuser', PW), 530);
    assert.equal(await ftpLogin('apiuser', NEW), true);

    assert.equal((await t.request('POST', `${base}/apiuser/disable`)).status, 200);
    assert.equal(await ftpLogin('apiuser', NEW), 530);
    assert.equal((await t.request('POST', `${base}/apiuser/enable`)).status, 200);
    assert.equal(await ftpLogin('apiuser', NEW), true);

    const del = await t.request('DELETE', `${base}/apiuser`);
    assert.equal(del.status, 200);
    assert.equal(await ftpLogin('apiuser', NEW), 530);
    assert.equal((await t.request('DELETE', `${base}/apiuser`)).status, 404);

    const audit = t.panel.ctx.audit.query({ hostId: HOST, limit: 100 });
    const ftpRows = audit.rows.filter((r) => r.action.includes('ftp'));
    assert.ok(ftpRows.some((r) => r.action === 'create ftp user' && r.ok));
    assert.ok(ftpRows.some((r) => r.action === 'set ftp password'));
    for (const r of ftpRows) {
      assert.ok(
        !(r.params ?? '').includes(PW) && !(r.params ?? '').includes(NEW),
        'password in the audit log',
      );
    }
    const createRow = ftpRows.find((r) => r.action === 'create ftp user');
    assert.match(createRow?.params ?? '', /"password":"\[redacted\]"/);
  });

  test('REST: bad input is a 400 with the reason; a viewer cannot change anything', async () => {
    const bad = await t.request<{ error: { code: string; message: string } }>('POST', base, {
      body: { username: 'evil:user', password: 'long enough', home: home('x') },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid-argument');
    assert.match(bad.body.error.message, /":"/);
    const escape = await t.request('POST', base, {
      body: { username: 'escaper', password: 'long enough', home: '/etc' },
    });
    assert.equal(escape.status, 400);
    const viewer = await t.request('POST', base, {
      token: t.token('viewer'),
      body: { username: 'viewer1', password: 'long enough', home: home('viewer1') },
    });
    assert.equal(viewer.status, 403);
    assert.ok(!existsSync(home('viewer1')));
    const missing = await t.request('POST', `${base}/nobody-here/disable`);
    assert.equal(missing.status, 404);
  });

  test('dashboard: create with a generated password (shown once), delete needs a confirmation', async () => {
    const web = await t.signedIn('op', 'operator');
    const tab = `/hosts/${HOST}/ftp`;
    const page = await web.get(tab);
    assert.equal(page.status, 200);
    assert.match(page.text, /New FTP user/);
    assert.match(page.text, /data-generate-password/);

    const created = await web.submit(tab, `${tab}/create`, {
      username: 'webuser',
      password: '',
      home: home('webuser'),
    });
    assert.equal(created.status, 200, created.text.slice(0, 500));
    assert.match(String(created.headers['cache-control']), /no-store/);
    const m = /id="ftp-generated-password"[^>]*>([^<]+)</.exec(created.text);
    assert.ok(m?.[1], 'generated password shown');
    const generated = unescapeHtml(m[1]);
    assert.ok(generated.length >= 16);
    assert.equal(await ftpLogin('webuser', generated), true);
    assert.match(created.text, /data-ftp-user="webuser"/);
    const again = await web.get(tab);
    assert.ok(!again.text.includes(generated), 'the password is shown only once');

    const refused = await web.submit(tab, `${tab}/create`, {
      username: 'Bad Name',
      password: '',
      home: home('bad'),
    });
    assert.equal(refused.status, 303);
    const flash = await web.get(tab);
    assert.match(flash.text, /upper-case|white space/);

    const noConfirm = await web.submit(tab, `${tab}/webuser/delete`, {});
    assert.equal(noConfirm.status, 303);
    assert.equal(await ftpLogin('webuser', generated), true, 'not deleted without confirmation');
    const deleted = await web.submit(tab, `${tab}/webuser/delete`, { confirm: 'yes' });
    assert.equal(deleted.status, 303);
    assert.equal(await ftpLogin('webuser', generated), 530);
    assert.ok(!(await web.get(tab)).text.includes('data-ftp-user="webuser"'));
  });
});
