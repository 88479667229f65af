// MySQL/MariaDB through the panel: REST API and the "Databases" tab (no JavaScript, plain forms)
// against a real panel and a real sandbox agent whose private MariaDB accepts the logins.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { tcpLogin } from '../helpers/mysql.ts';

/** A refused login: wrong password (1045) or, for a dropped account, possibly 1698. */
const DENIED = /^ER_ACCESS_DENIED(_NO_PASSWORD)?_ERROR$/;
const HOST = 'db-panel';
let t: TestPanel;
let port: number;

const dbLogin = (user: string, password: string, database?: string): Promise<true | string> =>
  tcpLogin(port, user, password, database);

const unescapeHtml = (s: string): string =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/**
 * The hidden fields of the tab's form posting to `action` for one account (and database), as
 * rendered on the page; null when the page has no such form.
 */
function formOf(html: string, action: string, match: Record<string, string>): Record<string, string> | null {
  for (const m of html.matchAll(/<form\b[^>]*\baction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/g)) {
    if (!unescapeHtml(m[1] ?? '').endsWith(action)) continue;
    const hidden: Record<string, string> = {};
    for (const i of (m[2] ?? '').matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g))
      hidden[i[1] ?? ''] = unescapeHtml(i[2] ?? '');
    if (Object.entries(match).every(([k, v]) => hidden[k] === v)) {
      delete hidden._csrf;
      return hidden;
    }
  }
  return null;
}

before(async () => {
  requireRoot('the MySQL panel test');
  requireProgram('mariadbd', 'mariadb-server');
  t = await startTestPanel();
  const { sandboxDir } = await t.addSandboxHost(HOST);
  const cnf = readFileSync(path.join(sandboxDir, 'var/lib/mysql-sandbox/my.cnf'), 'utf8');
  port = Number(/^port=(\d+)$/m.exec(cnf)?.[1]);
  assert.ok(port > 0, 'sandbox MariaDB running');
});

after(async () => {
  await t?.close();
});

describe('databases through the panel', () => {
  const dbs = `/api/v1/hosts/${HOST}/databases`;
  const users = `/api/v1/hosts/${HOST}/database-users`;

  test('REST: database, account, grant, password, revoke, drop — real logins, redacted audit', async () => {
    const PW = 'api-Password-1';
    const NEW = 'api-Password-2';
    const db = await t.request('POST', dbs, { body: { name: 'apidb', collation: 'utf8mb4_bin' } });
    assert.equal(db.status, 201, db.text);
    assert.equal((db.body as { data: { charset: string } }).data.charset, 'utf8mb4');
    const u = await t.request('POST', users, { body: { user: 'apiuser', host: '%', password: PW } });
    assert.equal(u.status, 201, u.text);
    assert.ok(!u.text.includes(PW), 'the reply does not carry the password');
    const acct = `${users}/apiuser/${encodeURIComponent('%')}`;
    const g = await t.request('PUT', `${acct}/grants/apidb`, { body: { privileges: 'read-only' } });
    assert.equal(g.status, 200, g.text);
    assert.equal(await dbLogin('apiuser', PW, 'apidb'), true);

    const list = await t.request<{ data: { users: { user: string; grants: { database: string }[] }[] } }>(
      'GET',
      users,
      { token: t.token('viewer') },
    );
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.data.users.find((x) => x.user === 'apiuser')?.grants.map((x) => x.database),
      ['apidb'],
    );
    const dbList = await t.request<{ data: { databases: { name: string; collation: string }[] } }>(
      'GET',
      dbs,
    );
    assert.equal(dbList.body.data.databases.find((d) => d.name === 'apidb')?.collation, 'utf8mb4_bin');

    const pw = await t.request('PUT', `${acct}/password`, { body: { password: NEW } });
    assert.equal(pw.status, 200, pw.text);
    assert.equal(await dbLogin('apiuser', PW), 'ER_ACCESS_DENIED_ERROR');
    assert.equal(await dbLogin('apiuser', NEW), true);

    const rv = await t.request('DELETE', `${acct}/grants/apidb`);
    assert.equal(rv.status, 200, rv.text);
    assert.equal(await dbLogin('apiuser', NEW, 'apidb'), 'ER_DBACCESS_DENIED_ERROR');
    assert.equal((await t.request('DELETE', `${acct}/grants/apidb`)).status, 404);

    assert.equal((await t.request('DELETE', acct)).status, 200);
    assert.match(String(await dbLogin('apiuser', NEW)), DENIED);
    assert.equal((await t.request('DELETE', acct)).status, 404);
    assert.equal((await t.request('DELETE', `${dbs}/apidb`)).status, 200);
    assert.equal((await t.request('DELETE', `${dbs}/apidb`)).status, 404);

    const audit = t.panel.ctx.audit.query({ hostId: HOST, limit: 100 });
    const rows = audit.rows.filter((r) => r.action.includes('database'));
    assert.ok(rows.some((r) => r.action === 'create database user' && r.ok));
    assert.ok(rows.some((r) => r.action === 'set database password' && r.ok));
    for (const r of rows) assert.ok(!(r.params ?? '').includes(PW) && !(r.params ?? '').includes(NEW));
    assert.match(
      rows.find((r) => r.action === 'create database user')?.params ?? '',
      /"password":"\[redacted\]"/,
    );
  });

  test('REST: bad input is a 400 with the reason; system schemas are refused; a viewer cannot change anything', async () => {
    const bad = await t.request<{ error: { code: string; message: string } }>('POST', dbs, {
      body: { name: 'x; DROP DATABASE mysql' },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid-argument');
    assert.match(bad.body.error.message, /only letters/);
    const sys = await t.request<{ error: { message: string } }>('DELETE', `${dbs}/mysql`);
    assert.equal(sys.status, 400);
    assert.match(sys.body.error.message, /system schema/);
    const root = await t.request('PUT', `${users}/root/localhost/password`, {
      body: { password: 'taken-over-1' },
    });
    assert.equal(root.status, 400);
    const extra = await t.request('POST', users, {
      body: { user: 'x1', host: '%', password: 'long-enough-1', grant: 'ALL' },
    });
    assert.equal(extra.status, 400);
    const viewer = await t.request('POST', dbs, { token: t.token('viewer'), body: { name: 'viewerdb' } });
    assert.equal(viewer.status, 403);
    const list = await t.request<{ data: { databases: { name: string }[] } }>('GET', dbs);
    assert.ok(!list.body.data.databases.some((d) => d.name === 'viewerdb'));
  });

  test('dashboard: create database and user (generated password shown once), grant, set password, revoke, drop with confirmation', async () => {
    const web = await t.signedIn('dbop', 'operator');
    const tab = `/hosts/${HOST}/mysql`;
    const page = await web.get(tab);
    assert.equal(page.status, 200);
    assert.match(page.text, /New database user/);

    const created = await web.submit(tab, `${tab}/databases/create`, { name: 'webdb', charset: 'utf8mb4' });
    assert.equal(created.status, 303);
    assert.match((await web.get(tab)).text, /data-database="webdb"/);

    const user = await web.submit(tab, `${tab}/users/create`, {
      user: 'webuser',
      host: '127.0.0.1',
      password: '',
    });
    assert.equal(user.status, 200, user.text.slice(0, 500));
    assert.match(String(user.headers['cache-control']), /no-store/);
    const m = /id="db-generated-password"[^>]*>([^<]+)</.exec(user.text);
    assert.ok(m?.[1], 'generated password shown');
    const generated = unescapeHtml(m[1]);
    assert.ok(generated.length >= 16);
    assert.equal(await dbLogin('webuser', generated), true);
    assert.ok(!(await web.get(tab)).text.includes(generated), 'the password is shown only once');

    const granted = await web.submit(tab, `${tab}/users/grant`, {
      user: 'webuser',
      host: '127.0.0.1',
      database: 'webdb',
      preset: 'custom',
      privileges: 'SELECT',
    });
    assert.equal(granted.status, 303);
    const after = await web.get(tab);
    assert.match(after.text, /data-grant="webdb"/);
    assert.equal(await dbLogin('webuser', generated, 'webdb'), true);

    // The account's Password form: a typed password, then an empty one (generated, shown once).
    const account = { user: 'webuser', host: '127.0.0.1' };
    const pwForm = formOf(after.text, '/users/password', account);
    assert.deepEqual(pwForm, account, 'the tab has a Password form for webuser@127.0.0.1');
    const typed = 'form-Password-2 ü';
    const setTyped = await web.submit(tab, `${tab}/users/password`, { ...pwForm, password: typed });
    assert.equal(setTyped.status, 303, setTyped.text.slice(0, 300));
    assert.match((await web.get(tab)).text, /New password set for webuser@127\.0\.0\.1\./);
    assert.equal(
      await dbLogin('webuser', generated),
      'ER_ACCESS_DENIED_ERROR',
      'the old password is refused',
    );
    assert.equal(await dbLogin('webuser', typed, 'webdb'), true, 'the new one works');
    const setGenerated = await web.submit(tab, `${tab}/users/password`, { ...pwForm, password: '' });
    assert.equal(setGenerated.status, 200, setGenerated.text.slice(0, 300));
    assert.match(String(setGenerated.headers['cache-control']), /no-store/);
    const g2 = /id="db-generated-password"[^>]*>([^<]+)</.exec(setGenerated.text);
    assert.ok(g2?.[1], 'the generated password is shown');
    const current = unescapeHtml(g2[1]);
    assert.notEqual(current, generated);
    assert.equal(await dbLogin('webuser', typed), 'ER_ACCESS_DENIED_ERROR');
    assert.equal(await dbLogin('webuser', current, 'webdb'), true);
    assert.ok(!(await web.get(tab)).text.includes(current), 'shown only once');

    // The revoke button next to the grant.
    const revokeForm = formOf((await web.get(tab)).text, '/users/revoke', { ...account, database: 'webdb' });
    assert.deepEqual(revokeForm, { ...account, database: 'webdb' }, 'a revoke form for the grant');
    const revoked = await web.submit(tab, `${tab}/users/revoke`, revokeForm);
    assert.equal(revoked.status, 303, revoked.text.slice(0, 300));
    const afterRevoke = await web.get(tab);
    assert.match(afterRevoke.text, /Privileges of webuser@127\.0\.0\.1 on webdb revoked\./);
    assert.equal(formOf(afterRevoke.text, '/users/revoke', { ...account, database: 'webdb' }), null);
    assert.equal(await dbLogin('webuser', current, 'webdb'), 'ER_DBACCESS_DENIED_ERROR', 'access denied');
    assert.equal(await dbLogin('webuser', current), true, 'the account itself stays');
    const again = await web.submit(tab, `${tab}/users/revoke`, revokeForm);
    assert.equal(again.status, 303);
    assert.match((await web.get(tab)).text, /has no privileges on the database webdb/);

    const refused = await web.submit(tab, `${tab}/databases/create`, { name: 'bad name' });
    assert.equal(refused.status, 303);
    assert.match((await web.get(tab)).text, /only letters/);

    const noConfirm = await web.submit(tab, `${tab}/databases/drop`, { name: 'webdb' });
    assert.equal(noConfirm.status, 303);
    assert.match((await web.get(tab)).text, /data-database="webdb"/);
    await web.submit(tab, `${tab}/users/drop`, { user: 'webuser', host: '127.0.0.1', confirm: 'yes' });
    assert.match(String(await dbLogin('webuser', current)), DENIED);
    await web.submit(tab, `${tab}/databases/drop`, { name: 'webdb', confirm: 'yes' });
    const final = await web.get(tab);
    assert.ok(!final.text.includes('data-database="webdb"'));
    assert.ok(!final.text.includes('data-db-user="webuser@127.0.0.1"'));
  });
});
