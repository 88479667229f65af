import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { WebClient, csrfOf } from '../helpers/web-client.ts';
import { SESSION_COOKIE } from '../../server/auth/sessions.ts';
import { hashPassword, verifyPassword } from '../../server/auth/passwords.ts';

// Accounts and sessions against a real panel over HTTPS (no agent needed).
let t: TestPanel;
const PW = 'correct horse battery staple';
const client = (): WebClient => new WebClient(t.url, t.panel.ctx.pki.ca.certPem);

before(async () => {
  t = await startTestPanel();
  const users = t.panel.ctx.accounts.users;
  await users.create({ username: 'admin1', password: PW, role: 'admin' });
  await users.create({ username: 'oper', password: PW, role: 'operator' });
  await users.create({ username: 'viewer', password: PW, role: 'viewer' });
});
after(async () => {
  await t.close();
});

test('scrypt hashes: salted, verifiable, never the password', async () => {
  const a = await hashPassword('some password 1');
  const b = await hashPassword('some password 1');
  assert.match(a, /^scrypt\$32768\$8\$1\$/);
  assert.notEqual(a, b);
  assert.equal(await verifyPassword('some password 1', a), true);
  assert.equal(await verifyPassword('some password 2', a), false);
  assert.equal(await verifyPassword('x', 'garbage$hash'), false);
  const row = t.panel.ctx.db.prepare("SELECT password_hash FROM users WHERE username = 'oper'").get() as {
    password_hash: string;
  };
  assert.ok(!row.password_hash.includes(PW));
});

test('pages need a session: redirect to login with a safe next', async () => {
  const c = client();
  const r = await c.get('/users');
  assert.equal(r.status, 303);
  assert.equal(r.location, '/login?next=%2Fusers');
  const post = await c.request('POST', '/users', { form: { username: 'x' } });
  assert.equal(post.status, 403, 'a POST without a session has no CSRF token');
});

test('login: secure cookie, session id rotated, hashed in the DB; wrong password refused', async () => {
  const c = client();
  const page = await c.get('/login');
  assert.equal(page.status, 200);
  // Before sign-in only the stateless pre-login CSRF nonce (no session, docs/security.md §10).
  const preCookie = String(page.headers['set-cookie']);
  assert.match(preCookie, /^__Host-ponio_pre=/);
  for (const flag of [/HttpOnly/, /Secure/, /SameSite=Lax/, /Path=\//]) assert.match(preCookie, flag);
  const anon = c.cookies.get(SESSION_COOKIE);
  assert.equal(anon, undefined, 'no session before sign-in');
  const bad = await c.request('POST', '/login', {
    form: { _csrf: csrfOf(page.text), username: 'oper', password: 'wrong password!' },
  });
  assert.equal(bad.status, 401);
  assert.match(bad.text, /Wrong username or password/);
  const unknown = await c.submit('/login', '/login', { username: "nobody' OR 1=1 --", password: PW });
  assert.equal(unknown.status, 401);
  const ok = await c.submit('/login', '/login', { username: 'oper', password: PW, next: '/audit' });
  assert.equal(ok.status, 303);
  assert.equal(ok.location, '/audit');
  const setCookie = String(ok.headers['set-cookie']);
  assert.match(setCookie, new RegExp(`${SESSION_COOKIE.replace(/[-]/g, '\\-')}=`));
  for (const flag of [/HttpOnly/, /Secure/, /SameSite=Lax/]) assert.match(setCookie, flag);
  const sid = c.cookies.get(SESSION_COOKIE);
  assert.ok(sid && sid !== anon, 'the session id changes at login');
  const rows = t.panel.ctx.db.prepare('SELECT sid FROM sessions').all() as { sid: string }[];
  assert.ok(!rows.some((r) => r.sid === sid), 'the cookie value is not stored, only its hash');
  const home = await c.get('/');
  assert.equal(home.status, 200);
  assert.match(home.text, /oper/);
  const audit = t.panel.ctx.audit.query({ action: 'login' });
  assert.ok(audit.rows.some((r) => r.actor === 'oper' && r.ok === 1));
  assert.ok(audit.rows.some((r) => r.actor === 'oper' && r.ok === 0));
});

test('open redirects are refused', async () => {
  for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
    const c = client();
    const r = await c.submit('/login', '/login', { username: 'viewer', password: PW, next });
    assert.equal(r.status, 303);
    assert.equal(r.location, '/', `next=${next}`);
  }
});

test("CSRF: a POST without the token, or with another session's, changes nothing", async () => {
  const admin = client();
  await admin.login('admin1', PW);
  const before = t.panel.ctx.accounts.users.count();
  const none = await admin.request('POST', '/users', {
    form: { username: 'mallory', password: 'abcdefghijkl', role: 'admin' },
  });
  assert.equal(none.status, 403);
  assert.match(none.text, /CSRF/);
  const other = client();
  await other.get('/login');
  const foreign = csrfOf((await other.get('/login')).text);
  const wrong = await admin.request('POST', '/users', {
    form: { _csrf: foreign, username: 'mallory', password: 'abcdefghijkl', role: 'admin' },
  });
  assert.equal(wrong.status, 403);
  const header = await admin.request('POST', '/users', {
    form: { username: 'mallory', password: 'abcdefghijkl', role: 'admin' },
    headers: { 'x-csrf-token': 'not-the-token' },
  });
  assert.equal(header.status, 403);
  assert.equal(t.panel.ctx.accounts.users.count(), before);
  assert.equal(t.panel.ctx.accounts.users.getByName('mallory'), null);
  const good = await admin.submit('/users', '/users', {
    username: 'carol',
    password: 'abcdefghijkl',
    role: 'viewer',
  });
  assert.equal(good.status, 303);
  assert.ok(t.panel.ctx.accounts.users.getByName('carol'));
});

test('roles: only admins manage users and tokens, on pages and the API', async () => {
  const v = client();
  await v.login('viewer', PW);
  assert.equal((await v.get('/users')).status, 403);
  assert.equal((await v.get('/tokens')).status, 403);
  const csrf = csrfOf((await v.get('/')).text);
  const r = await v.request('POST', '/users', {
    form: { _csrf: csrf, username: 'eve', password: 'abcdefghijkl', role: 'admin' },
  });
  assert.equal(r.status, 403);
  assert.equal(t.panel.ctx.accounts.users.getByName('eve'), null);
  const o = client();
  await o.login('oper', PW);
  assert.equal((await o.get('/users')).status, 403);
  const home = await v.get('/');
  assert.ok(!/href="\/users"/.test(home.text), 'viewers do not see the Users link');
  assert.ok(!/Add host/.test(home.text), 'viewers do not see mutating buttons');
  const api = await t.request('POST', '/api/v1/users', {
    token: t.token('operator'),
    body: { username: 'eve', password: 'abcdefghijkl', role: 'admin' },
  });
  assert.equal(api.status, 403);
  assert.equal(api.body.error.code, 'permission-denied');
});

test('logout ends the session; the old cookie is worthless', async () => {
  const c = client();
  await c.login('viewer', PW);
  const old = c.cookies.get(SESSION_COOKIE)!;
  const out = await c.submit('/', '/logout', {});
  assert.equal(out.status, 303);
  assert.equal(out.location, '/login');
  const again = await c.request('POST', '/logout', {});
  assert.equal(again.status, 303, 'signing out of an ended session just goes to the login page');
  assert.equal(again.location, '/login');
  const replay = new WebClient(t.url, t.panel.ctx.pki.ca.certPem);
  replay.cookies.set(SESSION_COOKIE, old);
  const r = await replay.get('/');
  assert.equal(r.status, 303);
  assert.match(r.location ?? '', /^\/login/);
});

test('disabling a user signs them out; the last admin cannot be removed', async () => {
  const admin = client();
  await admin.login('admin1', PW);
  const v = client();
  await v.login('carol', 'abcdefghijkl');
  // carol must change her (temporary, admin-set) password first.
  assert.equal((await v.get('/')).location, '/account/password');
  const changed = await v.submit('/account/password', '/account/password', {
    current: 'abcdefghijkl',
    password: 'carols own password',
    confirm: 'carols own password',
  });
  assert.equal(changed.status, 303);
  assert.equal((await v.get('/')).status, 200);
  const carol = t.panel.ctx.accounts.users.getByName('carol')!;
  const dis = await admin.submit('/users', `/users/${carol.id}/disable`, {});
  assert.equal(dis.status, 303);
  assert.equal((await v.get('/')).status, 303, 'a disabled user is signed out at once');
  const relog = await v.login('carol', 'carols own password');
  assert.equal(relog.status, 401);
  const me = t.panel.ctx.accounts.users.getByName('admin1')!;
  const self = await admin.submit('/users', `/users/${me.id}/disable`, {});
  assert.equal(self.status, 303);
  assert.equal(t.panel.ctx.accounts.users.get(me.id)?.disabled, 0);
  assert.throws(() => t.panel.ctx.accounts.users.update(me.id, { role: 'viewer' }), /last enabled admin/);
});

test('bad input to account forms: clear error, nothing changed', async () => {
  const admin = client();
  await admin.login('admin1', PW);
  const before = t.panel.ctx.accounts.users.count();
  for (const username of [
    '../etc',
    'a b',
    'Admin\n',
    "x'; DROP TABLE users;--",
    'аdmin',
    'a'.repeat(100),
    '',
  ]) {
    const r = await admin.submit('/users', '/users', { username, password: 'abcdefghijkl', role: 'viewer' });
    assert.equal(r.status, 303);
    const page = await admin.get('/users');
    assert.match(page.text, /alert-danger/, `refused: ${JSON.stringify(username)}`);
  }
  const shortPw = await admin.submit('/users', '/users', {
    username: 'dave',
    password: 'short',
    role: 'viewer',
  });
  assert.equal(shortPw.status, 303);
  assert.match((await admin.get('/users')).text, /at least 10 characters/);
  const badRole = await t.request('POST', '/api/v1/users', {
    body: { username: 'dave', password: 'abcdefghijkl', role: 'root' },
  });
  assert.equal(badRole.status, 400);
  assert.equal(badRole.body.error.code, 'invalid-argument');
  assert.equal(t.panel.ctx.accounts.users.count(), before);
});

test('one-time setup link sets the first admin password, then is used up', async () => {
  const t2 = await startTestPanel();
  try {
    const first = await t2.panel.ctx.accounts.ensureFirstAdmin();
    assert.ok(first);
    assert.equal(await t2.panel.ctx.accounts.ensureFirstAdmin(), null, 'only on first run');
    const c = new WebClient(t2.url, t2.panel.ctx.pki.ca.certPem);
    assert.equal((await c.get('/setup?token=wrongwrongwrongwrongwrong')).status, 410);
    const r = await c.submit(`/setup?token=${first.setupToken}`, '/setup', {
      token: first.setupToken,
      password: 'my chosen password',
      confirm: 'my chosen password',
    });
    assert.equal(r.status, 303);
    assert.equal((await c.get('/')).status, 200);
    assert.equal((await c.get(`/setup?token=${first.setupToken}`)).status, 410, 'single use');
    const c2 = new WebClient(t2.url, t2.panel.ctx.pki.ca.certPem);
    assert.equal((await c2.login('admin', first.password)).status, 401, 'the printed password is replaced');
    assert.equal((await c2.login('admin', 'my chosen password')).status, 303);
  } finally {
    await t2.close();
  }
});

test('login is rate limited after repeated failures', async () => {
  const c = client();
  let last = 0;
  for (let i = 0; i < 12; i++) {
    last = (await c.submit('/login', '/login', { username: 'viewer', password: `wrong ${i}` })).status;
    if (last === 429) break;
  }
  assert.equal(last, 429);
  const blocked = await c.submit('/login', '/login', { username: 'viewer', password: PW });
  assert.equal(blocked.status, 429, 'even the right password waits out the window');
  // X-Forwarded-For is not trusted (trustProxy is off): a spoofed address does not reset the limit.
  const page = await c.get('/login');
  const spoofed = await c.request('POST', '/login', {
    form: { _csrf: csrfOf(page.text), username: 'viewer', password: PW },
    headers: { 'x-forwarded-for': '203.0.113.77' },
  });
  assert.equal(spoofed.status, 429);
});
