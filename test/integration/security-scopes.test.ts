// Issue 24: permissions scoped to hosts, against a real panel with two real sandbox agents.
// Table-driven over every route the panel serves: a route under /hosts/:hostId is refused for an
// out-of-scope host (through the one host guard); any other API route must say in the route table
// whether it is panel-wide or a list cut to the caller's hosts, or this test names it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { startTestPanel, TEST_USER_PASSWORD, type TestPanel } from '../helpers/panel.ts';
import { WebClient, csrfOf } from '../helpers/web-client.ts';
import { servedRoutes, toOpenApiPath, type ServedRoute } from '../helpers/routes.ts';
import { createApp } from '../../server/http/app.ts';
import { OPENAPI_ROUTES } from '../../server/api/openapi-routes.ts';
import { SESSION_COOKIE } from '../../server/auth/sessions.ts';
import { SOCKET_RECHECK_MS } from '../../server/realtime/index.ts';

let t: TestPanel;
let routes: ServedRoute[];
/** webop: operator on role=web only (a user grant). */
let webop: WebClient;
let webopId: number;
/** A token webop's account made: never wider than webop's grants. */
let webopToken: string;
/** A token limited by its own selector (made by the CLI, so no creator to narrow it). */
let selectorToken: string;
const sockets: Socket[] = [];

const OUT = 'db-1';
const IN = 'web-1';
/** An in-scope pending host the controls may remove and re-issue tokens for. */
const SPARE = 'web-2';
const scopeRefusal = (id: string) => `No host with id ${id}.`;

const addSpare = (): void => {
  if (t.panel.ctx.hosts.repo.get(SPARE)) return;
  t.panel.ctx.hosts.repo.insert({ id: SPARE, name: SPARE, address: '127.0.0.1', port: 9 });
  t.panel.ctx.labels.set(SPARE, { role: 'web' });
};

before(async () => {
  t = await startTestPanel();
  await t.addSandboxHost(IN);
  await t.addSandboxHost(OUT);
  t.panel.ctx.labels.set(IN, { role: 'web' });
  t.panel.ctx.labels.set(OUT, { role: 'db' });
  addSpare();
  webop = await t.signedIn('webop', 'operator');
  webopId = t.panel.ctx.accounts.users.getByName('webop')!.id;
  const g = await t.request('PUT', `/api/v1/users/${webopId}/grants`, {
    body: { grants: [{ role: 'operator', selector: 'role=web' }] },
  });
  assert.equal(g.status, 200, g.text);
  webopToken = t.panel.ctx.apiTokens.create({
    name: 'webop-script',
    role: 'operator',
    createdBy: webopId,
    expiresAt: null,
  }).token;
  selectorToken = t.panel.ctx.apiTokens.create({
    name: 'web-only',
    role: 'operator',
    createdBy: null,
    expiresAt: null,
    selector: 'role=web',
  }).token;
  routes = servedRoutes(createApp(t.panel.ctx));
});
after(async () => {
  for (const s of sockets) s.close();
  await t.close();
});

const apiRoutes = (): ServedRoute[] =>
  routes
    .filter((r) => r.path.startsWith('/api/v1/') && r.path !== '/api/v1/openapi.json')
    .map((r) => ({ method: r.method, path: r.path.slice('/api/v1'.length) }));
const isHostRoute = (p: string): boolean => p.startsWith('/hosts/:hostId') || p.startsWith('/hosts/{hostId}');
const fill = (p: string, host: string): string =>
  p
    .replace(/[:{]hostId\}?/, host)
    .replace(/[:{]id\}?/, '999999')
    .replace(/:[A-Za-z]+|\{[^}]+\}/g, 'x');
/** Destructive panel operations run last in the controls (they remove the spare host). */
const lastIfRemoving = (a: { method: string; path: string }, b: { method: string; path: string }) =>
  Number((/^(DELETE|delete)$/.test(a.method) && /hostId\}?$/.test(a.path)) || a.path.endsWith('/remove')) -
  Number((/^(DELETE|delete)$/.test(b.method) && /hostId\}?$/.test(b.path)) || b.path.endsWith('/remove'));

test('every API route is in the route table, and each is host-scoped or says how it is scoped', () => {
  const documented = new Set(OPENAPI_ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`));
  const served = apiRoutes();
  assert.ok(served.length > 40, `the walk found the API (${served.length} routes)`);
  for (const r of served) {
    const key = `${r.method} ${toOpenApiPath(r.path)}`;
    assert.ok(
      documented.has(key),
      `${key} is served but not in the route table (server/api/openapi-routes.ts)`,
    );
  }
  for (const r of OPENAPI_ROUTES) {
    const key = `${r.method.toUpperCase()} ${r.path}`;
    if (isHostRoute(r.path)) {
      assert.equal(r.access, undefined, `${key} is under a host: the host guard decides, not 'access'`);
      continue;
    }
    assert.ok(
      r.access === 'panel' || r.access === 'scoped-list',
      `${key} is neither host-scoped (/hosts/{hostId}/...) nor marked access: 'panel' | 'scoped-list'`,
    );
  }
});

test('REST: every host route refuses an out-of-scope host to a scoped operator’s token and a selector token', async () => {
  const hostRoutes = OPENAPI_ROUTES.filter((r) => isHostRoute(r.path));
  assert.ok(hostRoutes.length >= 30, 'the table lists the host routes');
  const auditBefore = t.panel.ctx.audit.query({ hostId: OUT }).total;
  for (const [who, token] of [
    ['webop token', webopToken],
    ['selector token', selectorToken],
  ] as const) {
    for (const r of hostRoutes) {
      const key = `${r.method.toUpperCase()} ${r.path}`;
      const res = await t.request<any>(r.method.toUpperCase(), `/api/v1${fill(r.path, OUT)}`, {
        token,
        body: r.method === 'get' || r.method === 'delete' ? undefined : {},
      });
      assert.equal(res.status, 404, `${who}: ${key} on ${OUT} → ${res.status} ${res.text.slice(0, 200)}`);
      assert.equal(
        res.body?.error?.message,
        scopeRefusal(OUT),
        `${who}: ${key} answers like an unknown host`,
      );
      // …and exactly like an id that does not exist (no existence oracle in any route's wording).
      const unknown = await t.request<any>(r.method.toUpperCase(), `/api/v1${fill(r.path, 'no-such-host')}`, {
        token,
        body: r.method === 'get' || r.method === 'delete' ? undefined : {},
      });
      assert.equal(unknown.status, 404, `${who}: ${key} on an unknown id`);
      assert.equal(
        unknown.body?.error?.message,
        scopeRefusal('no-such-host'),
        `${who}: ${key} unknown id wording`,
      );
    }
  }
  assert.equal(t.panel.ctx.audit.query({ hostId: OUT }).total, auditBefore, 'nothing reached the host');
  assert.ok(t.panel.ctx.hosts.repo.get(OUT), 'the out-of-scope host is still there');
  // Control: the same routes on in-scope hosts are not refused by scope (whatever else they say).
  for (const [who, token] of [
    ['webop token', webopToken],
    ['selector token', selectorToken],
  ] as const) {
    for (const r of [...hostRoutes].sort(lastIfRemoving)) {
      const host = r.path === '/hosts/{hostId}/system' || r.path.endsWith('/ping') ? IN : SPARE;
      addSpare();
      const res = await t.request<any>(r.method.toUpperCase(), `/api/v1${fill(r.path, host)}`, {
        token,
        body: r.method === 'get' || r.method === 'delete' ? undefined : {},
      });
      assert.notEqual(
        res.body?.error?.message,
        scopeRefusal(host),
        `${who}: ${r.method.toUpperCase()} ${r.path} on in-scope ${host} must not be refused by scope`,
      );
    }
  }
  addSpare();
  const ping = await t.request<any>('POST', `/api/v1/hosts/${IN}/ping`, { token: selectorToken });
  assert.equal(ping.status, 200, 'the selector token reaches its host');
});

test('REST: relabelling and adding hosts need more than a host grant; panel routes stay admin-only', async () => {
  for (const token of [webopToken, selectorToken]) {
    const relabelIn = await t.request<any>('PUT', `/api/v1/hosts/${IN}/labels`, {
      token,
      body: { labels: { role: 'db' } },
    });
    assert.equal(relabelIn.status, 403, 'a scoped operator cannot move their host out of scope');
    const add = await t.request<any>('POST', '/api/v1/hosts', {
      token,
      body: { name: 'sneaky', mode: 'reverse' },
    });
    assert.equal(add.status, 403, add.text);
    assert.match(add.body.error.message, /needs access to all hosts/);
    for (const r of OPENAPI_ROUTES.filter((x) => x.access === 'panel' && x.role === 'admin')) {
      const res = await t.request<any>(r.method.toUpperCase(), `/api/v1${fill(r.path, OUT)}`, {
        token,
        body: r.method === 'get' || r.method === 'delete' ? undefined : {},
      });
      assert.equal(res.status, 403, `${r.method.toUpperCase()} ${r.path} is admin-only`);
    }
  }
  assert.deepEqual(t.panel.ctx.labels.get(IN), { role: 'web' }, 'labels unchanged');
});

test('REST: lists are cut to the scope (hosts, audit, jobs, preview, /me)', async () => {
  // An entry about the out-of-scope host, made by an admin.
  const adminJob = await t.request<any>('POST', '/api/v1/jobs', {
    body: { event: 'ping', params: {}, target: { hosts: [OUT] } },
  });
  assert.equal(adminJob.status, 202, adminJob.text);
  await t.panel.ctx.jobs.waitFinished(adminJob.body.data.id, 30_000);
  assert.ok(t.panel.ctx.audit.query({ hostId: OUT }).total > 0);
  for (const token of [webopToken, selectorToken]) {
    const hosts = await t.request<any>('GET', '/api/v1/hosts', { token });
    const ids = (hosts.body.data as { id: string }[]).map((h) => h.id).sort();
    assert.deepEqual(ids, [IN, SPARE].sort());
    const me = await t.request<any>('GET', '/api/v1/me', { token });
    assert.deepEqual([...me.body.data.hosts].sort(), [IN, SPARE].sort());
    const audit = await t.request<any>('GET', '/api/v1/audit?limit=500', { token });
    assert.equal(audit.status, 200);
    const auditHosts = new Set((audit.body.data.entries as { hostId: string | null }[]).map((e) => e.hostId));
    assert.ok(!auditHosts.has(OUT), 'no audit entry of the out-of-scope host');
    assert.ok(!auditHosts.has(null), 'no panel-wide entries for a scoped viewer');
    const outAudit = await t.request<any>('GET', `/api/v1/audit?host=${OUT}`, { token });
    assert.equal(outAudit.body.data.total, 0);
    const preview = await t.request<any>('POST', '/api/v1/jobs/preview', {
      token,
      body: { target: { all: true }, event: 'ping' },
    });
    assert.equal(preview.status, 200, preview.text);
    assert.deepEqual(
      (preview.body.data.hosts as { id: string }[]).map((h) => h.id),
      [IN],
      'only enrolled in-scope hosts',
    );
    assert.equal(preview.body.data.outOfScope, 1);
    assert.match(preview.body.data.summary, /1 host outside your scope left out/);
    const named = await t.request<any>('POST', '/api/v1/jobs/preview', {
      token,
      body: { target: { hosts: [OUT] } },
    });
    assert.equal(named.status, 400);
    assert.match(named.body.error.message, /No host with the id or name "db-1"/);
    const job = await t.request<any>('POST', '/api/v1/jobs', {
      token,
      body: { event: 'ping', params: {}, target: { all: true } },
    });
    assert.equal(job.status, 202, job.text);
    const done = await t.panel.ctx.jobs.waitFinished(job.body.data.id, 30_000);
    assert.deepEqual(
      t.panel.ctx.jobs.store.hosts(done.id).map((h) => h.host_id),
      [IN],
      'the job ran only on the in-scope host',
    );
    const jobs = await t.request<any>('GET', '/api/v1/jobs?limit=500', { token });
    const jobIds = (jobs.body.data as { id: number }[]).map((j) => j.id);
    assert.ok(jobIds.includes(job.body.data.id));
    assert.ok(!jobIds.includes(adminJob.body.data.id), "the admin's job on db-1 is not listed");
    const other = await t.request<any>('GET', `/api/v1/jobs/${adminJob.body.data.id}`, { token });
    assert.equal(other.status, 404);
    const cancel = await t.request<any>('POST', `/api/v1/jobs/${adminJob.body.data.id}/retry`, { token });
    assert.equal(cancel.status, 404);
  }
});

test('a token is never wider than its creator’s current grants', async () => {
  // webop's grant moves to role=db: the token they made follows at once.
  await t.request('PUT', `/api/v1/users/${webopId}/grants`, {
    body: { grants: [{ role: 'viewer', selector: 'role=db' }] },
  });
  try {
    const inNow = await t.request<any>('POST', `/api/v1/hosts/${OUT}/ping`, { token: webopToken });
    assert.equal(inNow.status, 200, inNow.text);
    const outNow = await t.request<any>('POST', `/api/v1/hosts/${IN}/ping`, { token: webopToken });
    assert.equal(outNow.status, 404);
    const write = await t.request<any>('POST', `/api/v1/hosts/${OUT}/websites`, {
      token: webopToken,
      body: { domain: 'never.example' },
    });
    assert.equal(write.status, 403, 'viewer on that host now');
    // An admin's selector token is cut by its selector even though its creator sees everything.
    const made = await t.request<any>('POST', '/api/v1/tokens', {
      body: { name: 'db-reader', role: 'viewer', selector: 'role=db' },
    });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.body.data.selector, 'role=db');
    const dbToken = made.body.data.token as string;
    assert.equal((await t.request('POST', `/api/v1/hosts/${OUT}/ping`, { token: dbToken })).status, 200);
    assert.equal((await t.request('POST', `/api/v1/hosts/${IN}/ping`, { token: dbToken })).status, 404);
    const adminSel = await t.request<any>('POST', '/api/v1/tokens', {
      body: { name: 'bad', role: 'admin', selector: 'role=db' },
    });
    assert.equal(adminSel.status, 400);
    const badSel = await t.request<any>('POST', '/api/v1/tokens', {
      body: { name: 'bad2', role: 'viewer', selector: "role=web'; DROP TABLE users;--" },
    });
    assert.equal(badSel.status, 400);
    assert.equal(badSel.body.error.code, 'invalid-argument');
  } finally {
    await t.request('PUT', `/api/v1/users/${webopId}/grants`, {
      body: { grants: [{ role: 'operator', selector: 'role=web' }] },
    });
  }
});

test('grants: bad input is refused with a sentence and nothing changes; admins take none', async () => {
  const before = t.panel.ctx.accounts.grants.of(webopId);
  for (const grants of [
    [{ role: 'admin', selector: null }],
    [{ role: 'operator', selector: 'role=web,,' }],
    [{ role: 'operator', selector: 'role=we\nb' }],
    [{ role: 'operator', selector: 'role=web', extra: 1 }],
    'operator:role=web',
    Array.from({ length: 17 }, () => ({ role: 'viewer', selector: null })),
  ]) {
    const r = await t.request<any>('PUT', `/api/v1/users/${webopId}/grants`, { body: { grants } });
    assert.equal(r.status, 400, JSON.stringify(grants).slice(0, 80));
    assert.equal(r.body.error.code, 'invalid-argument');
    assert.ok(r.body.error.message.length > 10);
  }
  assert.deepEqual(t.panel.ctx.accounts.grants.of(webopId), before);
  const adminId = t.panel.ctx.accounts.users.getByName('boss')?.id;
  const boss =
    adminId ??
    (
      await t.panel.ctx.accounts.users.create({
        username: 'boss',
        password: TEST_USER_PASSWORD,
        role: 'admin',
      })
    ).id;
  const r = await t.request<any>('PUT', `/api/v1/users/${boss}/grants`, {
    body: { grants: [{ role: 'viewer', selector: 'role=web' }] },
  });
  assert.equal(r.status, 409, r.text);
});

test('dashboard: every page and form under a host refuses an out-of-scope host; lists hide it', async () => {
  const hostPages = routes.filter((r) => !r.path.startsWith('/api/') && r.path.includes(':hostId'));
  assert.ok(hostPages.length >= 20, `the dashboard's host routes (${hostPages.length})`);
  const csrf = csrfOf((await webop.get('/')).text);
  for (const r of hostPages) {
    const res =
      r.method === 'GET'
        ? await webop.get(fill(r.path, OUT))
        : await webop.request(r.method, fill(r.path, OUT), { form: { _csrf: csrf } });
    assert.equal(res.status, 404, `${r.method} ${r.path} on ${OUT} → ${res.status}`);
    assert.ok(res.text.includes(scopeRefusal(OUT)), `${r.method} ${r.path} answers like an unknown host`);
    const unknown =
      r.method === 'GET'
        ? await webop.get(fill(r.path, 'no-such-host'))
        : await webop.request(r.method, fill(r.path, 'no-such-host'), { form: { _csrf: csrf } });
    assert.equal(unknown.status, 404, `${r.method} ${r.path} on an unknown id`);
    assert.ok(unknown.text.includes(scopeRefusal('no-such-host')), `${r.method} ${r.path}: same wording`);
  }
  for (const r of [...hostPages].sort(lastIfRemoving)) {
    addSpare();
    const res =
      r.method === 'GET'
        ? await webop.get(fill(r.path, SPARE))
        : await webop.request(r.method, fill(r.path, SPARE), { form: { _csrf: csrf } });
    assert.ok(!res.text.includes(scopeRefusal(SPARE)), `${r.method} ${r.path} on in-scope ${SPARE}`);
  }
  addSpare();
  const overview = await webop.get('/');
  assert.ok(overview.text.includes(IN));
  assert.ok(!overview.text.includes(OUT), 'the out-of-scope host is not on the overview');
  assert.ok(!overview.text.includes('id="add-host"'), 'no "Add host" for a scoped operator');
  const audit = await webop.get('/audit');
  assert.equal(audit.status, 200);
  assert.ok(!audit.text.includes(OUT), 'nor in the audit page (entries or filter lists)');
  const jobs = await webop.get('/jobs');
  assert.ok(!jobs.text.includes(OUT));
  const hostPage = await webop.get(`/hosts/${IN}`);
  assert.ok(!hostPage.text.includes('Save labels'), 'the labels form is an admin’s');
  const relabel = await webop.request('POST', `/hosts/${IN}/labels`, {
    form: { _csrf: csrf, labels: 'role=db' },
  });
  assert.equal(relabel.status, 403);
  assert.deepEqual(t.panel.ctx.labels.get(IN), { role: 'web' });
});

function browserSocket(c: WebClient): Socket {
  const s = io(t.url, {
    transports: ['websocket'],
    ca: t.panel.ctx.pki.ca.certPem,
    reconnection: false,
    forceNew: true,
    extraHeaders: { cookie: `${SESSION_COOKIE}=${c.cookies.get(SESSION_COOKIE) ?? ''}`, origin: t.url },
  } as Parameters<typeof io>[1]);
  sockets.push(s);
  return s;
}

/** Collects the host ids of hostState / agentEvent / hostChange events a socket receives. */
function recorder(s: Socket): { seen: Set<string>; clear(): void } {
  const seen = new Set<string>();
  s.on('hostState', (e: { id: string }) => seen.add(`state:${e.id}`));
  s.on('agentEvent', (e: { hostId: string }) => seen.add(`event:${e.hostId}`));
  s.on('hostChange', (e: { hostId: string }) => seen.add(`change:${e.hostId}`));
  return { seen, clear: () => seen.clear() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const untilTrue = async (fn: () => boolean, ms: number): Promise<boolean> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await sleep(50);
  }
  return fn();
};

test('browser socket: no events from out-of-scope hosts; re-evaluated when labels change', async () => {
  const s = browserSocket(webop);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  });
  const rec = recorder(s);
  const watch = (id: string) => s.timeout(5_000).emitWithAck('watch host', id) as Promise<boolean>;
  assert.equal(await watch(OUT), false, 'an out-of-scope host cannot be watched');
  s.emit('watch overview');
  assert.equal(await watch(IN), true);
  const ev = t.panel.ctx.events;
  const fire = (id: string): void => {
    const st = t.panel.ctx.hosts.manager.status(id)!;
    ev.emit('hostState', st);
    ev.emit('agentEvent', id, { topic: 'test', data: {} });
    ev.emit('hostChange', {
      hostId: id,
      action: 'ping',
      module: 'system',
      actor: 'x',
      ok: true,
      message: '',
    });
  };
  fire(OUT);
  fire(IN);
  assert.ok(await untilTrue(() => rec.seen.has(`event:${IN}`) && rec.seen.has(`change:${IN}`), 5_000));
  assert.ok(rec.seen.has(`state:${IN}`));
  assert.deepEqual(
    [...rec.seen].filter((x) => x.endsWith(OUT)),
    [],
    'nothing about the out-of-scope host',
  );
  // The admin relabels: web-1 leaves webop's scope, db-1 enters it.
  const move = async (id: string, role: string) =>
    t.request('PUT', `/api/v1/hosts/${id}/labels`, { body: { labels: { role } } });
  try {
    await move(IN, 'db');
    await move(OUT, 'web');
    rec.clear();
    fire(IN);
    fire(OUT);
    assert.ok(await untilTrue(() => rec.seen.has(`state:${OUT}`) && rec.seen.has(`change:${OUT}`), 5_000));
    await sleep(200);
    assert.deepEqual(
      [...rec.seen].filter((x) => x.endsWith(IN)),
      [],
      'the host that left the scope sends nothing, not even to the page that watched it',
    );
    // A grant change applies too (within one recheck at the latest).
    await t.request('PUT', `/api/v1/users/${webopId}/grants`, {
      body: { grants: [{ role: 'operator', selector: 'role=none' }] },
    });
    await sleep(SOCKET_RECHECK_MS + 500);
    rec.clear();
    fire(IN);
    fire(OUT);
    await sleep(300);
    assert.deepEqual([...rec.seen], [], 'a user whose grant matches nothing hears nothing');
  } finally {
    await move(IN, 'web');
    await move(OUT, 'db');
    await t.request('PUT', `/api/v1/users/${webopId}/grants`, {
      body: { grants: [{ role: 'operator', selector: 'role=web' }] },
    });
  }
});

test('dashboard: an admin sets grants on the Users page and a selector on a new token', async () => {
  const admin = await t.signedIn('scope-admin', 'admin');
  await t.panel.ctx.accounts.users.create({ username: 'dana', password: TEST_USER_PASSWORD, role: 'viewer' });
  const dana = t.panel.ctx.accounts.users.getByName('dana')!;
  const bad = await admin.submit('/users', `/users/${dana.id}/grants`, { grants: 'operator:role=web,,' });
  assert.equal(bad.status, 303);
  assert.match((await admin.get('/users')).text, /empty term/);
  assert.deepEqual(t.panel.ctx.accounts.grants.of(dana.id), [], 'a bad form changes nothing');
  const ok = await admin.submit('/users', `/users/${dana.id}/grants`, {
    grants: 'operator:role=web\nviewer:*',
  });
  assert.equal(ok.status, 303);
  assert.deepEqual(t.panel.ctx.accounts.grants.of(dana.id), [
    { role: 'operator', selector: 'role=web' },
    { role: 'viewer', selector: null },
  ]);
  assert.equal(t.panel.ctx.accounts.users.get(dana.id)!.role, 'operator', 'role = highest grant');
  const users = await admin.get('/users');
  assert.match(users.text, /operator on role=web; viewer on all hosts/);
  const audit = t.panel.ctx.audit.query({ action: 'user grants' }).rows[0];
  assert.equal(audit?.actor, 'scope-admin');
  // Viewer on all hosts, operator on web: dana reads db-1 but cannot change it.
  const d = new WebClient(t.url, t.panel.ctx.pki.ca.certPem);
  await d.login('dana', TEST_USER_PASSWORD);
  assert.equal((await d.get(`/hosts/${OUT}`)).status, 200);
  const page = await d.get(`/hosts/${OUT}/websites`);
  const write = await d.request('POST', `/hosts/${OUT}/websites/create`, {
    form: { _csrf: csrfOf(page.text), domain: 'never.example' },
  });
  assert.equal(write.status, 403, 'viewer on db-1');
  // A token with a selector, from the tokens page.
  const made = await admin.submit('/tokens', '/tokens', {
    name: 'web-ci',
    role: 'operator',
    selector: 'role=web',
  });
  assert.equal(made.status, 200, made.text.slice(0, 300));
  const secret = /id="new-token-value"[^>]*>([^<]+)</.exec(made.text)?.[1];
  assert.ok(secret);
  assert.equal((await t.request('GET', `/api/v1/hosts/${OUT}`, { token: secret })).status, 404);
  assert.equal((await t.request('GET', `/api/v1/hosts/${IN}`, { token: secret })).status, 200);
  const doc = await t.request<any>('GET', '/api/v1/openapi.json', { token: null });
  assert.equal(doc.body.paths['/hosts/{hostId}/websites'].get['x-ponio-access'], 'host');
  assert.equal(doc.body.paths['/users'].get['x-ponio-access'], 'panel');
  assert.equal(doc.body.paths['/hosts'].get['x-ponio-access'], 'scoped-list');
});

test('browser socket: a job room is kept across rechecks when visible, refused when not', async () => {
  const job = await t.request<any>('POST', '/api/v1/jobs', {
    body: { event: 'ping', params: {}, target: { hosts: [OUT] } },
  });
  assert.equal(job.status, 202, job.text);
  const inScopeJob = await t.request<any>('POST', '/api/v1/jobs', {
    token: selectorToken,
    body: { event: 'ping', params: {}, target: { hosts: [IN] } },
  });
  assert.equal(inScopeJob.status, 202, inScopeJob.text);
  const s = browserSocket(webop);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  });
  const got = new Set<number>();
  s.on('jobChange', (e: { jobId: number }) => got.add(e.jobId));
  const outId = job.body.data.id as number;
  const inId = inScopeJob.body.data.id as number;
  // Joining a room is per socket and exclusive (one job page at a time): test each in turn.
  s.emit('watch job', outId);
  await sleep(SOCKET_RECHECK_MS + 500);
  t.panel.ctx.events.emit('job', { jobId: outId });
  await sleep(600);
  assert.ok(!got.has(outId), 'a job on an out-of-scope host is not relayed');
  s.emit('watch job', inId);
  // Past a recheck: the room must still be there.
  await sleep(SOCKET_RECHECK_MS + 500);
  t.panel.ctx.events.emit('job', { jobId: inId });
  assert.ok(await untilTrue(() => got.has(inId), 3_000), 'the visible job is still relayed after a recheck');
});

test('CLI: `ponio-panel user grants` and `token create --selector` (another process, same database)', async () => {
  await t.panel.ctx.accounts.users.create({ username: 'carl', password: TEST_USER_PASSWORD, role: 'viewer' });
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [path.resolve('bin/ponio-panel.js'), ...args, '--data-dir', t.dataDir], {
      encoding: 'utf8',
      timeout: 60_000,
    });
  const set = cli('user', 'grants', 'carl', 'operator:role=web', 'viewer:*');
  assert.equal(set.status, 0, set.stderr);
  assert.match(set.stdout, /carl: operator on role=web; viewer on all hosts/);
  const carl = t.panel.ctx.accounts.users.getByName('carl')!;
  assert.equal(carl.role, 'operator');
  assert.equal(
    t.panel.ctx.scopes.roleOn({ kind: 'user', name: 'carl', role: carl.role, userId: carl.id }, OUT),
    'viewer',
  );
  const bad = cli('user', 'grants', 'carl', 'admin:*');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /admin is panel-wide/);
  const clear = cli('user', 'grants', 'carl', '--all-hosts');
  assert.equal(clear.status, 0, clear.stderr);
  assert.deepEqual(t.panel.ctx.accounts.grants.of(carl.id), []);
  const tok = cli('token', 'create', 'cli-web', '--role', 'viewer', '--selector', 'role=web');
  assert.equal(tok.status, 0, tok.stderr);
  const secret = tok.stdout.trim().split('\n').pop()!;
  assert.equal((await t.request('GET', `/api/v1/hosts/${OUT}`, { token: secret })).status, 404);
  assert.equal((await t.request('GET', `/api/v1/hosts/${IN}`, { token: secret })).status, 200);
  const badSel = cli('token', 'create', 'x', '--role', 'viewer', '--selector', 'role=web;rm -rf /');
  assert.notEqual(badSel.status, 0);
  assert.equal(t.panel.ctx.audit.query({ actor: 'cli', action: 'user grants' }).total, 2);
});
