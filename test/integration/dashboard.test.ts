import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { WebClient } from '../helpers/web-client.ts';
import { SESSION_COOKIE } from '../../server/auth/sessions.ts';

// Dashboard pages and the browser socket against a real panel with a real sandbox agent.
let t: TestPanel;
const PW = 'correct horse battery staple';
let admin: WebClient;
let viewer: WebClient;
const sockets: Socket[] = [];

function browserSocket(c: WebClient | null, origin?: string): Socket {
  const cookie = c ? `${SESSION_COOKIE}=${c.cookies.get(SESSION_COOKIE) ?? ''}` : undefined;
  const s = io(t.url, {
    transports: ['websocket'],
    ca: t.panel.ctx.pki.ca.certPem,
    reconnection: false,
    forceNew: true,
    extraHeaders: { ...(cookie ? { cookie } : {}), origin: origin ?? t.url },
  } as Parameters<typeof io>[1]);
  sockets.push(s);
  return s;
}

const connected = (s: Socket): Promise<string> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 10_000);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve('connected');
    });
    s.once('connect_error', (e) => {
      clearTimeout(timer);
      resolve(e.message);
    });
  });

const nextEvent = <T>(s: Socket, name: string, ms = 20_000): Promise<T> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${ms} ms`)), ms);
    s.once(name, (v: T) => {
      clearTimeout(timer);
      resolve(v);
    });
  });

before(async () => {
  t = await startTestPanel();
  await t.addSandboxHost('web1');
  const users = t.panel.ctx.accounts.users;
  await users.create({ username: 'admin1', password: PW, role: 'admin' });
  await users.create({ username: 'viewer', password: PW, role: 'viewer' });
  admin = new WebClient(t.url, t.panel.ctx.pki.ca.certPem);
  viewer = new WebClient(t.url, t.panel.ctx.pki.ca.certPem);
  assert.equal((await admin.login('admin1', PW)).status, 303);
  assert.equal((await viewer.login('viewer', PW)).status, 303);
});
after(async () => {
  for (const s of sockets) s.disconnect();
  await t.close();
});

test('overview lists the sandbox host online with its agent version', async () => {
  const r = await admin.get('/');
  assert.equal(r.status, 200);
  assert.match(r.text, /data-host-row="web1"/);
  assert.match(r.text, /data-host-state="web1"[^>]*>online</);
  assert.match(r.text, /0\.1\.0|\d+\.\d+\.\d+/);
  assert.match(r.text, /href="\/hosts\/new"/, 'admins see Add host');
  assert.match(r.text, /data-live-refresh="on"/);
});

test('host page System tab shows facts from the agent, tabs and module availability', async () => {
  const r = await admin.get('/hosts/web1');
  assert.equal(r.status, 200);
  const info = await t.request<{ data: { hostname: string } }>('GET', '/api/v1/hosts/web1/system');
  assert.match(r.text, new RegExp(`id="sys-hostname">${info.body.data.hostname}<`));
  for (const tab of ['websites', 'ftp', 'mysql', 'firewall'])
    assert.match(r.text, new RegExp(`href="/hosts/web1/${tab}"`));
  // The sandbox agent has no network namespace configured: the firewall says why.
  assert.match(r.text, /Not available on this host: [^<]*namespace/);
  assert.equal((await admin.get('/hosts/nope')).status, 404);
});

test('the ping form works without JavaScript and flashes the result', async () => {
  const r = await admin.submit('/hosts/web1', '/hosts/web1/ping', {});
  assert.equal(r.status, 303);
  assert.equal(r.location, '/hosts/web1');
  const page = await admin.get('/hosts/web1');
  assert.match(page.text, /alert-success[^>]*>The agent answered/);
});

test('security headers: strict CSP without inline script, no inline script in pages', async () => {
  const r = await admin.get('/');
  const csp = String(r.headers['content-security-policy']);
  assert.match(csp, /script-src 'self'/);
  assert.ok(!csp.includes('unsafe-inline'));
  assert.ok(!/<script(?![^>]*\ssrc=)[^>]*>/.test(r.text), 'every script has a src');
  assert.ok(!/\sstyle="/.test(r.text), 'no inline styles (CSP style-src self)');
  assert.ok(!/\son[a-z]+="/.test(r.text), 'no inline event handlers');
  const js = await admin.get('/static/app.js');
  assert.equal(js.status, 200);
  assert.match(String(js.headers['content-type']), /javascript/);
  assert.match(js.text, /watch host/);
  const sio = await admin.get('/socket.io/socket.io.min.js');
  assert.equal(sio.status, 200);
});

test('API tokens: created on the page, shown once, stored hashed, usable on the API', async () => {
  const r = await admin.submit('/tokens', '/tokens', {
    name: 'deploy script',
    role: 'operator',
    expiresInDays: '30',
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.match(r.text, /data-live-refresh="off"/, 'a page showing a secret is never re-rendered live');
  const token = /id="new-token-value">(pio_[A-Za-z0-9_-]+)</.exec(r.text)?.[1];
  assert.ok(token, 'the new token is shown');
  const again = await admin.get('/tokens');
  assert.ok(!again.text.includes(token), 'never shown again');
  const rows = t.panel.ctx.db.prepare('SELECT token_hash FROM api_tokens').all() as { token_hash: string }[];
  assert.ok(!rows.some((x) => x.token_hash === token));
  const me = await t.request<{ data: { role: string } }>('GET', '/api/v1/me', { token });
  assert.equal(me.status, 200);
  assert.equal(me.body.data.role, 'operator');
  const id = /data-token="deploy script">[\s\S]*?action="\/tokens\/(\d+)\/revoke"/.exec(again.text)?.[1];
  assert.ok(id);
  const rev = await admin.submit('/tokens', `/tokens/${id}/revoke`, {});
  assert.equal(rev.status, 303);
  assert.equal((await t.request('GET', '/api/v1/me', { token })).status, 401);
});

test('audit log: filters by host, user and action; paginates', async () => {
  for (let i = 0; i < 3; i++)
    t.panel.ctx.audit.write({
      actor: { kind: 'user', name: 'admin1', role: 'admin' },
      hostId: 'web1',
      action: 'create website',
      params: { domain: `s${i}.example` },
      ok: i !== 1,
      errorCode: i === 1 ? 'already-exists' : null,
    });
  for (let i = 0; i < 55; i++)
    t.panel.ctx.audit.write({
      actor: { kind: 'cli', name: 'cli', role: 'admin' },
      hostId: null,
      action: 'bulk',
      params: { i },
      ok: true,
    });
  const byHost = await viewer.get('/audit?host=web1&action=create+website');
  assert.equal(byHost.status, 200);
  assert.equal((byHost.text.match(/s\d\.example/g) ?? []).length, 3);
  assert.ok(!byHost.text.includes('bulk</code>'));
  const byActor = await viewer.get('/audit?actor=cli');
  assert.match(byActor.text, /55 entries/);
  assert.match(byActor.text, /Page 1 of 2/);
  const p2 = await viewer.get('/audit?actor=cli&page=2');
  assert.match(p2.text, /Page 2 of 2/);
  assert.equal((p2.text.match(/<code>bulk<\/code>/g) ?? []).length, 5);
  const hostile = await viewer.get('/audit?host=%27%20OR%201%3D1--&page=-5');
  assert.equal(hostile.status, 200);
  assert.match(hostile.text, /0 entries/);
  const api = await t.request<{ data: { total: number; entries: { action: string }[] } }>(
    'GET',
    '/api/v1/audit?actor=cli&limit=10',
    { token: t.token('viewer') },
  );
  assert.equal(api.body.data.total, 55);
  assert.equal(api.body.data.entries.length, 10);
});

test('viewers see no Add host button; settings show the CA pin', async () => {
  const page = await viewer.get('/hosts/web1');
  assert.equal(page.status, 200);
  const home = await viewer.get('/');
  assert.ok(!home.text.includes('href="/hosts/new"'));
  const settings = await viewer.get('/settings');
  assert.match(settings.text, /sha256:[0-9a-f]{64}/);
});

test('browser socket: needs a session and the same origin', async () => {
  assert.equal(await connected(browserSocket(null)), 'unauthenticated');
  const foreign = browserSocket(admin, 'https://evil.example');
  assert.notEqual(await connected(foreign), 'connected');
  assert.equal(await connected(browserSocket(admin)), 'connected');
});

test('browser socket: a mutation through the API reaches the host room live; logout drops the socket', async () => {
  const s = browserSocket(viewer);
  assert.equal(await connected(s), 'connected');
  assert.equal(await s.timeout(5_000).emitWithAck('watch host', '../nope'), false);
  assert.equal(await s.timeout(5_000).emitWithAck('watch host', 'web1'), true);
  const change = nextEvent<{ hostId: string; action: string; ok: boolean; actor: string }>(s, 'hostChange');
  const created = await t.request('POST', '/api/v1/hosts/web1/websites', {
    body: { domain: 'live.example' },
  });
  assert.equal(created.status, 201, created.text);
  const c = await change;
  assert.equal(c.hostId, 'web1');
  assert.equal(c.action, 'create website');
  assert.equal(c.ok, true);
  assert.equal(c.actor, 'token:test-admin');
  const gone = nextEvent<string>(s, 'disconnect', 10_000);
  await viewer.submit('/', '/logout', {});
  assert.equal(await gone, 'io server disconnect');
});

test('Add host wizard: shows the enrollment command once; bad input is refused; remove needs confirmation', async () => {
  const r = await admin.submit('/hosts/new', '/hosts/new', {
    name: 'web9',
    address: '192.0.2.9',
    port: '7443',
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers['cache-control'], 'no-store');
  const cmd = /id="enroll-command">([^<]+)</.exec(r.text)?.[1] ?? '';
  assert.match(cmd, /^ponio-agent enroll --panel https:\/\/\S+ --token \S+ --ca-pin sha256:[0-9a-f]{64}$/);
  assert.match(r.text, /data-copy-target="#enroll-command"/);
  const token = /--token (\S+)/.exec(cmd)?.[1] ?? '';
  const hostPage = await admin.get('/hosts/web9');
  assert.match(hostPage.text, /id="pending-host"/);
  assert.ok(!hostPage.text.includes(token), 'the join token is not shown again');
  const before = t.panel.ctx.hosts.repo.list().length;
  for (const [name, address] of [
    ['web;reboot', '192.0.2.10'],
    ['web10', '$(reboot)'],
    ['web10', '192.0.2.10\nx'],
  ] as const) {
    const bad = await admin.submit('/hosts/new', '/hosts/new', { name, address, port: '7443' });
    assert.equal(bad.status, 400, `${name} ${address}`);
    assert.match(bad.text, /alert-danger/);
  }
  assert.equal(t.panel.ctx.hosts.repo.list().length, before);
  const noConfirm = await admin.submit('/hosts/web9', '/hosts/web9/remove', {});
  assert.equal(noConfirm.status, 303);
  assert.ok(t.panel.ctx.hosts.repo.get('web9'));
  const removed = await admin.submit('/hosts/web9', '/hosts/web9/remove', { confirm: 'yes' });
  assert.equal(removed.location, '/');
  assert.equal(t.panel.ctx.hosts.repo.get('web9'), null);
  const vc = new WebClient(t.url, t.panel.ctx.pki.ca.certPem);
  assert.equal((await vc.login('viewer', PW)).status, 303);
  const v = await vc.submit('/', '/hosts/new', { name: 'web11', address: '192.0.2.11' });
  assert.equal(v.status, 403);
});

test('live progress: a form with a progressId gets the agent steps of its own call, in order', async () => {
  const s = browserSocket(admin);
  assert.equal(await connected(s), 'connected');
  assert.equal(await s.timeout(5_000).emitWithAck('watch host', 'web1'), true);
  const steps: { requestId: string; event: string; step: number; message: string }[] = [];
  s.on('agentEvent', (e: { hostId: string; topic: string; data: (typeof steps)[number] }) => {
    if (e.hostId === 'web1' && e.topic === 'progress') steps.push(e.data);
  });
  const progressId = randomUUID();
  const tab = '/hosts/web1/websites';
  const r = await admin.submit(tab, `${tab}/create`, {
    domain: 'progress.example',
    aliases: '',
    adminEmail: '',
    progressId,
  });
  assert.equal(r.status, 303);
  const deadline = Date.now() + 5_000;
  while (!steps.some((x) => x.message === 'Reloading Apache') && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 50));
  const mine = steps.filter((x) => x.requestId === progressId);
  assert.deepEqual(
    mine.map((x) => [x.event, x.step, x.message]),
    [
      ['create website', 1, 'Creating the site tree and the vhost of progress.example'],
      ['create website', 2, 'Testing the Apache configuration'],
      ['create website', 3, 'Reloading Apache'],
    ],
  );
  // The id is the call's requestId (audited), so the steps belong to exactly that call.
  const row = t.panel.ctx.db
    .prepare("SELECT params FROM audit_log WHERE action = 'create website' ORDER BY id DESC LIMIT 1")
    .get() as { params: string };
  assert.equal((JSON.parse(row.params) as { requestId?: string }).requestId, progressId);
  // The FTP tab's create form reports the FTP module's steps the same way.
  const sites = await t.request<{ data: { websites: { domain: string; docroot: string | null }[] } }>(
    'GET',
    '/api/v1/hosts/web1/websites',
  );
  const docroot = sites.body.data.websites.find((w) => w.domain === 'progress.example')?.docroot ?? '';
  const ftpId = randomUUID();
  const ftpTab = '/hosts/web1/ftp';
  const ftp = await admin.submit(ftpTab, `${ftpTab}/create`, {
    username: 'progftp',
    password: 'a long ftp password 1',
    home: docroot,
    progressId: ftpId,
  });
  assert.ok(ftp.status === 303 || ftp.status === 200, ftp.text.slice(0, 300));
  const ftpDeadline = Date.now() + 5_000;
  while (steps.filter((x) => x.requestId === ftpId).length < 3 && Date.now() < ftpDeadline)
    await new Promise((res) => setTimeout(res, 50));
  assert.deepEqual(
    steps.filter((x) => x.requestId === ftpId).map((x) => x.message),
    [
      'Hashing the password (SHA-512 crypt)',
      'Writing the FTP user file',
      'Checking the proftpd configuration (proftpd -t)',
    ],
  );

  // A malformed id is ignored (never forwarded): the call gets a requestId of the panel's own.
  steps.length = 0;
  const plain = await admin.submit(tab, `${tab}/progress.example/disable`, { progressId: 'not-a-uuid' });
  assert.equal(plain.status, 303);
  const last = t.panel.ctx.db
    .prepare("SELECT params, ok FROM audit_log WHERE action = 'disable website' ORDER BY id DESC LIMIT 1")
    .get() as { params: string; ok: number };
  assert.equal(last.ok, 1);
  assert.equal((JSON.parse(last.params) as { requestId?: string }).requestId, undefined);
  assert.ok(!steps.some((x) => x.requestId === 'not-a-uuid'));
});

test('a live-region refresh does not eat the flash message meant for the next page', async () => {
  const tab = '/hosts/web1/websites';
  const r = await admin.submit(tab, `${tab}/create`, { domain: 'bad..flash', aliases: '', adminEmail: '' });
  assert.equal(r.status, 303);
  // What public/app.ts sends when another change arrives over the socket meanwhile.
  const refresh = await admin.request('GET', tab, { headers: { 'x-ponio-refresh': '1' } });
  assert.equal(refresh.status, 200);
  assert.ok(!refresh.text.includes('empty label'), 'the refresh shows no flash');
  const page = await admin.get(tab);
  assert.match(page.text, /empty label/, 'the page after the redirect still shows it');
  assert.ok(!(await admin.get(tab)).text.includes('empty label'), 'shown once');
});
