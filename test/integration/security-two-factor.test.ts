// Issue 24: two-factor sign-in (TOTP with a real RFC 6238 generator, recovery codes, the
// "require two-factor" setting, admin and CLI reset, throttling) against a real panel over HTTPS.
// Passkeys in Chromium: test/e2e/two-factor.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { generateSync } from 'otplib';
import { io } from 'socket.io-client';
import { startTestPanel, TEST_USER_PASSWORD, type TestPanel } from '../helpers/panel.ts';
import { WebClient, csrfOf } from '../helpers/web-client.ts';
import { SESSION_COOKIE } from '../../server/auth/sessions.ts';
import { SECRET_KEY_FILE } from '../../server/auth/secret-box.ts';
import { SECOND_FACTOR_LIMITS } from '../../server/auth/second-factor.ts';
import { RECENT_SIGN_IN_MS } from '../../server/http/two-factor-page.ts';

let t: TestPanel;
const client = (): WebClient => new WebClient(t.url, t.panel.ctx.pki.ca.certPem);
const nowS = (): number => Math.floor(Date.now() / 1000);
/** The code an authenticator app shows `offset` seconds from now. */
const code = (secret: string, offset = 0): string => generateSync({ secret, epoch: nowS() + offset });

before(async () => {
  t = await startTestPanel();
});
after(async () => {
  await t.close();
});

/** Signs in with the password only and enrols an authenticator app; returns its secret and recovery codes. */
async function enrolTotp(c: WebClient): Promise<{ secret: string; recovery: string[] }> {
  const started = await c.submit('/account/two-factor', '/account/two-factor/totp', {});
  assert.equal(started.status, 200, `${started.location} ${started.text.slice(0, 300)}`);
  const secret = /id="totp-secret"[^>]*>([A-Z2-7]+)</.exec(started.text)?.[1];
  assert.ok(secret, 'the key is shown during set-up');
  assert.match(started.text, /id="totp-qr" src="data:image\/png;base64,[A-Za-z0-9+/=]{200,}"/);
  assert.ok(!/<script>/.test(started.text), 'no inline script (CSP)');
  const wrong = await c.request('POST', '/account/two-factor/totp/confirm', {
    form: { _csrf: csrfOf(started.text), code: code(secret) === '000000' ? '111111' : '000000' },
  });
  assert.equal(wrong.status, 400);
  const ok = await c.request('POST', '/account/two-factor/totp/confirm', {
    form: { _csrf: csrfOf(started.text), code: code(secret) },
  });
  assert.equal(ok.status, 200, ok.text.slice(0, 300));
  const recovery = [
    ...ok.text.matchAll(/<li class="col-6">([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})<\/li>/g),
  ].map((m) => m[1]!);
  assert.equal(recovery.length, 10, 'ten recovery codes, shown once');
  return { secret, recovery };
}

async function passwordStep(c: WebClient, username: string, password = TEST_USER_PASSWORD) {
  const r = await c.login(username, password);
  assert.equal(r.status, 303);
  return r;
}

async function secondStep(c: WebClient, value: string) {
  const page = await c.get('/login/two-factor');
  assert.equal(page.status, 200, page.text.slice(0, 200));
  return c.request('POST', '/login/two-factor', {
    form: { _csrf: csrfOf(page.text), code: value, next: '/' },
  });
}

test('TOTP: enrol with a real code generator; the seed is sealed at rest and never shown again', async () => {
  const c = await t.signedIn('tina', 'operator');
  const { secret } = await enrolTotp(c);
  const id = t.panel.ctx.accounts.users.getByName('tina')!.id;
  const row = t.panel.ctx.twoFactor.repo.totp(id)!;
  assert.ok(row.confirmed_at !== null);
  assert.ok(!row.secret_enc.includes(secret), 'not stored in the clear');
  assert.ok(
    !readFileSync(path.join(t.dataDir, 'panel.db')).includes(Buffer.from(secret)),
    'nowhere in panel.db',
  );
  assert.equal(statSync(path.join(t.dataDir, SECRET_KEY_FILE)).mode & 0o777, 0o600);
  const later = await c.get('/account/two-factor');
  assert.ok(!later.text.includes(secret), 'the key is never shown again');
  assert.match(later.text, /Your sign-ins ask for a code/);
  const audit = t.panel.ctx.audit.query({ action: '2fa totp enrol' }).rows;
  assert.equal(audit.length, 1);
  assert.ok(!JSON.stringify(audit).includes(secret));

  // Sign-in: the password alone signs nobody in.
  const d = client();
  const pw = await passwordStep(d, 'tina');
  assert.match(pw.location ?? '', /^\/login\/two-factor\?next=/);
  const notYet = await d.get('/');
  assert.equal(notYet.status, 303);
  assert.match(notYet.location ?? '', /^\/login/);
  // The code used to confirm (this time step) is not accepted again; the next step's is (drift).
  const replay = await secondStep(d, code(secret));
  const next = code(secret, 30);
  if (next !== code(secret)) assert.equal(replay.status, 401, 'a code is accepted once');
  const ok = await secondStep(d, next);
  assert.equal(ok.status, 303, ok.text.slice(0, 300));
  assert.equal((await d.get('/')).status, 200, 'signed in');
  const again = client();
  await passwordStep(again, 'tina');
  assert.equal((await secondStep(again, next)).status, 401, 'the same code twice: refused');
  const logins = t.panel.ctx.audit.query({ actor: 'tina', action: 'login' }).rows;
  assert.ok(logins.some((r) => r.ok === 1 && r.message === 'second factor: authenticator code'));
  assert.ok(logins.some((r) => r.ok === 0 && r.message === 'wrong second factor'));
});

test('recovery codes: each signs in once', async () => {
  const c = await t.signedIn('rita', 'viewer');
  const { recovery } = await enrolTotp(c);
  const first = recovery[0]!;
  const a = client();
  await passwordStep(a, 'rita');
  const ok = await secondStep(a, first.toUpperCase().replace(/-/g, ' '));
  assert.equal(ok.status, 303, 'typed in capitals with spaces: same code');
  const home = await a.get('/');
  assert.equal(home.status, 200);
  assert.match(home.text, /recovery code; 9 left/);
  const b = client();
  await passwordStep(b, 'rita');
  const reuse = await secondStep(b, first);
  assert.equal(reuse.status, 401, 'a used recovery code is refused');
  assert.equal(
    t.panel.ctx.twoFactor.status(t.panel.ctx.accounts.users.getByName('rita')!.id).recoveryLeft,
    9,
  );
  // New codes (password asked) replace the old ones.
  const wrongPw = await a.submit('/account/two-factor', '/account/two-factor/recovery', {
    password: 'nope nope nope',
  });
  assert.equal(wrongPw.status, 400);
  const fresh = await a.submit('/account/two-factor', '/account/two-factor/recovery', {
    password: TEST_USER_PASSWORD,
  });
  assert.equal(fresh.status, 200);
  const c2 = client();
  await passwordStep(c2, 'rita');
  assert.equal((await secondStep(c2, recovery[1]!)).status, 401, 'old codes stop working');
});

test('throttling covers the second factor: per account, even the right code is refused after the limit', async () => {
  const c = await t.signedIn('theo', 'viewer');
  const { secret } = await enrolTotp(c);
  const d = client();
  await passwordStep(d, 'theo');
  for (let i = 0; i < SECOND_FACTOR_LIMITS.perUser; i++) {
    const r = await secondStep(d, i % 2 === 0 ? '123456' : 'aaaa-bbbb-cccc');
    assert.equal(r.status, 401);
  }
  const limited = await secondStep(d, code(secret, 30));
  assert.equal(limited.status, 429, 'the limit holds for the right code too');
  assert.match(limited.text, /Too many wrong codes/);
  // Another browser with the same password counts against the same account.
  const e = client();
  await passwordStep(e, 'theo');
  assert.equal((await secondStep(e, code(secret, 30))).status, 429);
  assert.ok(
    t.panel.ctx.audit
      .query({ actor: 'theo', action: 'login' })
      .rows.some((r) => r.error_code === 'rate-limited'),
  );
});

test('"require two-factor" forces enrolment at the next sign-in (pages, forms and socket)', async () => {
  await t.panel.ctx.accounts.users.create({ username: 'nina', password: TEST_USER_PASSWORD, role: 'admin' });
  const bad = await t.request<any>('PUT', '/api/v1/settings/two-factor', { body: { require: 'sometimes' } });
  assert.equal(bad.status, 400);
  const set = await t.request<any>('PUT', '/api/v1/settings/two-factor', { body: { require: 'admins' } });
  assert.equal(set.status, 200, set.text);
  try {
    const c = client();
    const login = await passwordStep(c, 'nina');
    assert.equal(login.location, '/account/two-factor');
    const home = await c.get('/');
    assert.equal(home.status, 303);
    assert.equal(home.location, '/account/two-factor');
    const page = await c.get('/account/two-factor');
    assert.match(page.text, /requires two-factor sign-in for your account/);
    const form = await c.request('POST', '/users', {
      form: { _csrf: csrfOf(page.text), username: 'sneak', password: 'long enough password', role: 'admin' },
    });
    assert.equal(form.status, 403);
    assert.equal(t.panel.ctx.accounts.users.getByName('sneak'), null);
    const s = io(t.url, {
      transports: ['websocket'],
      ca: t.panel.ctx.pki.ca.certPem,
      reconnection: false,
      forceNew: true,
      extraHeaders: { cookie: `${SESSION_COOKIE}=${c.cookies.get(SESSION_COOKIE) ?? ''}`, origin: t.url },
    } as Parameters<typeof io>[1]);
    const outcome = await new Promise<string>((resolve) => {
      s.once('connect', () => resolve('connected'));
      s.once('connect_error', (e) => resolve(e.message));
    });
    s.close();
    assert.equal(outcome, 'unauthenticated', 'no host events before enrolment');
    // A viewer is not concerned by "admins".
    const v = await t.signedIn('vera', 'viewer');
    assert.equal((await v.get('/')).status, 200);
    await enrolTotp(c);
    assert.equal((await c.get('/')).status, 200, 'enrolled: the panel opens');
    // Removing the only factor while it is required is refused.
    const rm = await c.submit('/account/two-factor', '/account/two-factor/totp/remove', {
      password: TEST_USER_PASSWORD,
    });
    assert.equal(rm.status, 409);
    assert.ok(t.panel.ctx.twoFactor.status(t.panel.ctx.accounts.users.getByName('nina')!.id).totp);
  } finally {
    await t.request('PUT', '/api/v1/settings/two-factor', { body: { require: 'off' } });
  }
});

test('admin reset for a lost device (audited), the CLI reset, and `user passwd` still recovers', async () => {
  const c = await t.signedIn('lena', 'operator');
  const { secret } = await enrolTotp(c);
  const id = t.panel.ctx.accounts.users.getByName('lena')!.id;
  const admin = await t.signedIn('adam', 'admin');
  const users = await admin.get('/users');
  assert.match(users.text, /Reset \(lost device\)/);
  const reset = await admin.request('POST', `/users/${id}/two-factor/reset`, {
    form: { _csrf: csrfOf(users.text) },
  });
  assert.equal(reset.status, 303);
  assert.equal(t.panel.ctx.twoFactor.hasFactor(id), false);
  assert.equal((await c.get('/')).status, 303, 'the user was signed out');
  const entry = t.panel.ctx.audit.query({ action: 'user 2fa reset' }).rows[0];
  assert.equal(entry?.actor, 'adam');
  const plain = client();
  const pw = await passwordStep(plain, 'lena');
  assert.equal(pw.location, '/', 'password only after the reset');
  // A viewer cannot reset anyone.
  const viewer = await t.signedIn('vic', 'viewer');
  const vpage = await viewer.get('/');
  const refused = await viewer.request('POST', `/users/${id}/two-factor/reset`, {
    form: { _csrf: csrfOf(vpage.text) },
  });
  assert.equal(refused.status, 403);

  // From the server's shell, while the panel runs: `user passwd` then `user reset-2fa`.
  await enrolTotp(plain);
  const cli = (args: string[], input?: string) =>
    spawnSync(process.execPath, [path.resolve('bin/ponio-panel.js'), ...args, '--data-dir', t.dataDir], {
      encoding: 'utf8',
      timeout: 60_000,
      ...(input === undefined ? {} : { input }),
    });
  const passwd = cli(['user', 'passwd', 'lena', '--password-stdin'], 'a brand new password 1\n');
  assert.equal(passwd.status, 0, passwd.stderr);
  const afterPasswd = client();
  const step = await passwordStep(afterPasswd, 'lena', 'a brand new password 1');
  assert.match(step.location ?? '', /^\/login\/two-factor/, 'a new password does not skip the second factor');
  assert.equal((await secondStep(afterPasswd, code(secret, 30))).status, 401, 'the old seed is gone');
  const r = cli(['user', 'reset-2fa', 'lena']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /two-factor sign-in of lena reset/);
  const none = cli(['user', 'reset-2fa', 'nobody-here']);
  assert.notEqual(none.status, 0);
  const afterCli = client();
  assert.equal((await passwordStep(afterCli, 'lena', 'a brand new password 1')).location, '/');
  assert.ok(t.panel.ctx.audit.query({ actor: 'cli', action: 'user 2fa reset' }).total >= 1);
});

test('adding a factor needs a recent sign-in (an old session cannot plant one)', async () => {
  const c = await t.signedIn('olaf', 'viewer');
  const long = Date.now() - RECENT_SIGN_IN_MS - 60_000;
  t.panel.ctx.db.prepare("UPDATE sessions SET data = json_set(data, '$.authAt', ?)").run(long);
  const r = await c.submit('/account/two-factor', '/account/two-factor/totp', {});
  assert.equal(r.status, 403);
  assert.match(r.text, /needs a recent sign-in/);
  assert.equal(t.panel.ctx.twoFactor.repo.totp(t.panel.ctx.accounts.users.getByName('olaf')!.id), null);
  const page = await c.get('/account/two-factor');
  const opts = await c.request('POST', '/account/two-factor/passkeys/options', {
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrfOf(page.text) },
    body: '{}',
  });
  assert.equal(opts.status, 403);
});

test('a pending sign-in is bound to the password: a reset in between voids it', async () => {
  const c = await t.signedIn('pia', 'viewer');
  const { secret } = await enrolTotp(c);
  const d = client();
  await passwordStep(d, 'pia');
  await t.panel.ctx.accounts.users.setPassword(
    t.panel.ctx.accounts.users.getByName('pia')!.id,
    'changed elsewhere 1',
  );
  const page = await d.get('/login/two-factor');
  assert.equal(page.status, 303);
  assert.equal(page.location, '/login');
  const forged = client();
  forged.cookies.set(
    '__Host-ponio_2fa',
    Buffer.from(`1.${Date.now() + 60_000}.0.AAAAAAAAAAAAAAAAAAAAAA`).toString('base64url'),
  );
  assert.equal((await forged.get('/login/two-factor')).location, '/login', 'a forged cookie is nothing');
  void secret;
});
