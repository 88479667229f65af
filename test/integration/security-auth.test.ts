// Issue 15's account and session holes, each against a real panel over HTTPS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPanel, TEST_USER_PASSWORD, type TestPanel } from '../helpers/panel.ts';
import { WebClient, csrfOf } from '../helpers/web-client.ts';

let t: TestPanel;
const PW = 'correct horse battery staple';
const client = (): WebClient => new WebClient(t.url, t.panel.ctx.pki.ca.certPem);

before(async () => {
  t = await startTestPanel();
  await t.panel.ctx.accounts.users.create({ username: 'alice', password: PW, role: 'admin' });
});
after(async () => {
  await t.close();
});

test('five concurrent POST /setup with the one-time token: exactly one succeeds', async () => {
  const t2 = await startTestPanel();
  try {
    const first = await t2.panel.ctx.accounts.ensureFirstAdmin();
    assert.ok(first);
    const clients = Array.from({ length: 5 }, () => new WebClient(t2.url, t2.panel.ctx.pki.ca.certPem));
    const pages = await Promise.all(clients.map((c) => c.get(`/setup?token=${first.setupToken}`)));
    const results = await Promise.all(
      clients.map((c, i) =>
        c.request('POST', '/setup', {
          form: {
            _csrf: csrfOf(pages[i]?.text ?? ''),
            token: first.setupToken,
            password: `chosen password ${i}`,
            confirm: `chosen password ${i}`,
          },
        }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [303, 410, 410, 410, 410], `statuses: ${statuses.join(' ')}`);
    const winner = results.findIndex((r) => r.status === 303);
    const c = new WebClient(t2.url, t2.panel.ctx.pki.ca.certPem);
    assert.equal((await c.login('admin', `chosen password ${winner}`)).status, 303, "the winner's password");
    const audits = t2.panel.ctx.audit.query({ action: 'setup admin password' }).rows;
    assert.equal(audits.length, 1);
  } finally {
    await t2.close();
  }
});

test('a password typed into the username box never reaches the audit log', async () => {
  const secret = 'Tr0ub4dor&3-typed-here';
  for (let i = 0; i < 2; i++) {
    const r = await client().login(secret, 'whatever password');
    assert.equal(r.status, 401);
  }
  const wrong = await client().login('alice', 'not her password');
  assert.equal(wrong.status, 401);
  const rows = t.panel.ctx.audit.query({ action: 'login' }).rows;
  const dump = JSON.stringify(rows);
  assert.ok(!dump.includes(secret), 'the typed text is stored nowhere in the audit rows');
  assert.ok(!dump.includes(secret.toLowerCase()));
  const unknown = rows.filter((r) => r.actor.startsWith('(unknown user '));
  assert.equal(unknown.length, 2);
  assert.match(unknown[0]?.actor ?? '', /^\(unknown user [0-9a-f]{8}\)$/);
  assert.equal(unknown[0]?.actor, unknown[1]?.actor, 'one name, one label: repeated attempts show');
  assert.ok(
    rows.some((r) => r.actor === 'alice' && r.ok === 0),
    'a real username is named',
  );
  const page = await (await t.signedIn('auditor', 'admin')).get('/audit');
  assert.ok(!page.text.includes(secret.toLowerCase()), 'nor on the audit page');
});

test("an API token never outlives its creator's account or exceeds their current role", async () => {
  const carol = await t.signedIn('carol', 'admin');
  const carolId = t.panel.ctx.accounts.users.getByName('carol')!.id;
  const made = await carol.submit('/tokens', '/tokens', { name: 'carol-deploy', role: 'admin' });
  assert.equal(made.status, 200, made.text.slice(0, 300));
  const token = /id="new-token-value"[^>]*>([^<]+)</.exec(made.text)?.[1];
  assert.ok(token, 'the new token is shown once');
  const api = (method: string, p: string, body?: unknown) =>
    t.request(method, p, { token, ...(body === undefined ? {} : { body }) });

  const asAdmin = await api('POST', '/api/v1/users', { username: 'made1', password: PW, role: 'viewer' });
  assert.equal(asAdmin.status, 201, asAdmin.text);
  const row = t.panel.ctx.audit.query({ action: 'user add' }).rows[0];
  assert.equal(row?.actor, 'token:carol-deploy (carol)', 'the audit names the token and its creator');

  // Demoted to operator: the admin token acts as an operator at most.
  const cli = t.adminToken; // made by the CLI (no creator): unchanged throughout
  assert.equal(
    (await t.request('PATCH', `/api/v1/users/${carolId}`, { body: { role: 'operator' }, token: cli })).status,
    200,
  );
  const demoted = await api('POST', '/api/v1/users', { username: 'made2', password: PW, role: 'admin' });
  assert.equal(demoted.status, 403, demoted.text);
  assert.equal((await api('GET', '/api/v1/hosts')).status, 200, 'operator reads still work');
  assert.equal((await api('GET', '/api/v1/me')).body.data.role, 'operator');
  assert.equal(t.panel.ctx.accounts.users.getByName('made2'), null);

  // Disabled: refused; enabled again: back (as operator).
  assert.equal(
    (await t.request('PATCH', `/api/v1/users/${carolId}`, { body: { disabled: true }, token: cli })).status,
    200,
  );
  const disabled = await api('GET', '/api/v1/hosts');
  assert.equal(disabled.status, 401);
  assert.match(disabled.text, /who created it is disabled or deleted/);
  assert.equal(
    (await t.request('PATCH', `/api/v1/users/${carolId}`, { body: { disabled: false }, token: cli })).status,
    200,
  );
  assert.equal((await api('GET', '/api/v1/hosts')).status, 200);

  // Deleted: the token is revoked with the account, and stays dead even if the id came back.
  assert.equal((await t.request('DELETE', `/api/v1/users/${carolId}`, { token: cli })).status, 200);
  assert.equal((await api('GET', '/api/v1/hosts')).status, 401);
  const stored = t.panel.ctx.apiTokens.list().find((x) => x.name === 'carol-deploy');
  assert.ok(stored?.revoked_at, 'revoked in the database');
  const del = t.panel.ctx.audit.query({ action: 'user delete' }).rows[0];
  assert.equal(JSON.parse(del?.params ?? '{}').revokedTokens, 1);
  assert.equal((await t.request('GET', '/api/v1/users', { token: cli })).status, 200, 'CLI tokens unchanged');
});

test('/account/password is throttled per user and per address, and its failures are audited', async () => {
  const t3 = await startTestPanel();
  try {
    const change = (c: WebClient, current: string) =>
      c.submit('/account/password', '/account/password', {
        current,
        password: 'a brand new password',
        confirm: 'a brand new password',
      });
    const [u1, u2, u3] = [
      await t3.signedIn('pw1', 'viewer'),
      await t3.signedIn('pw2', 'viewer'),
      await t3.signedIn('pw3', 'viewer'),
    ];
    for (let i = 0; i < 5; i++) assert.equal((await change(u1, `guess ${i}`)).status, 400);
    assert.equal((await change(u1, 'guess 5')).status, 429, 'the sixth guess for one user waits');
    const right = await change(u1, TEST_USER_PASSWORD);
    assert.equal(right.status, 429, 'even the right one, until the window passes');
    assert.match(right.text, /Too many wrong current passwords/);
    for (let i = 0; i < 5; i++) assert.equal((await change(u2, `guess ${i}`)).status, 400);
    assert.equal((await change(u3, 'first guess')).status, 429, 'the address has used up its ten');
    const rows = t3.panel.ctx.audit.query({ action: 'user passwd' }).rows;
    assert.equal(rows.filter((r) => r.ok === 0 && r.error_code === 'unauthenticated').length, 10);
    assert.ok(rows.some((r) => r.ok === 0 && r.error_code === 'rate-limited' && r.actor === 'pw3'));
    assert.ok(!rows.some((r) => r.ok === 1), 'no password was changed');
  } finally {
    await t3.close();
  }
});

test('anonymous visitors cost no session rows; the sign-in form is still CSRF-protected', async () => {
  const count = (): number =>
    (t.panel.ctx.db.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n;
  const before = count();
  for (let i = 0; i < 300; i++) {
    const r = await t.request('GET', '/login', { token: null, headers: { accept: 'text/html' } });
    assert.equal(r.status, 200);
  }
  assert.equal(count(), before, '300 cookie-less GET /login made no session rows');
  assert.equal((await client().login('nobody-here', 'wrong password')).status, 401);
  assert.equal(count(), before, 'nor does a failed sign-in');

  // The token is bound to the visitor's own nonce cookie: another one's, or none, is refused.
  const a = client();
  const b = client();
  const tokenA = csrfOf((await a.get('/login')).text);
  await b.get('/login');
  const crossed = await b.request('POST', '/login', {
    form: { _csrf: tokenA, username: 'alice', password: PW },
  });
  assert.equal(crossed.status, 403);
  const noCookie = await client().request('POST', '/login', {
    form: { _csrf: tokenA, username: 'alice', password: PW },
  });
  assert.equal(noCookie.status, 403);
  const ok = await a.request('POST', '/login', { form: { _csrf: tokenA, username: 'alice', password: PW } });
  assert.equal(ok.status, 303);
  assert.equal(count(), before + 1, 'one row, made at sign-in');
  assert.equal((await a.get('/')).status, 200);
});
