// Issue 15's account and session holes, each against a real panel over HTTPS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
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
