// Backups through the panel: the REST API (with OpenAPI-declared routes), the Backups tab
// without JavaScript (plain forms; a restore says what it replaces and needs its box ticked;
// the trash restores in one click), a fan-out job backing up every host, and the audit. A real
// panel, real sandbox agents (private Apache and MariaDB) and the real restic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { rootQuery } from '../helpers/mysql.ts';
import { fetchSite, portOf } from '../helpers/websites.ts';

const HOST = 'bk-panel';
const BARE = 'bk-bare';
const SITE = 'panel.backup.test';
let t: TestPanel;
let sandbox: string;
let port: number;
const api = `/api/v1/hosts/${HOST}`;
const socket = (): string => path.join(sandbox, 'run/mysqld.sock');

interface Snap {
  id: string;
  shortId: string;
  kind: string;
  name: string;
  reason: string;
  sizeBytes: number | null;
}
const snapshots = async (): Promise<Snap[]> =>
  (await t.request<{ data: { snapshots: Snap[] } }>('GET', `${api}/backups`)).body.data.snapshots;

before(async () => {
  requireRoot('the backups panel test');
  requireProgram('restic', 'restic');
  requireProgram('apache2', 'apache2');
  requireProgram('mariadbd', 'mariadb-server');
  t = await startTestPanel();
  ({ sandboxDir: sandbox } = await t.addSandboxHost(HOST, { modules: { ftp: false, firewall: false } }));
  await t.addSandboxHost(BARE, { modules: { websites: false, ftp: false, mysql: false, firewall: false } });
  const w = await t.request<{ data: { url: string } }>('POST', `${api}/websites`, { body: { domain: SITE } });
  assert.equal(w.status, 201, w.text);
  const list = await t.request<{ data: { url: string } }>('GET', `${api}/websites`);
  port = portOf(list.body.data.url);
  await fsp.writeFile(
    path.join(sandbox, 'var/www', SITE, 'public_html/index.html'),
    '<p>panel original</p>\n',
  );
  assert.equal((await t.request('POST', `${api}/databases`, { body: { name: 'paneldb' } })).status, 201);
  await rootQuery(socket(), 'CREATE TABLE paneldb.t (id INT PRIMARY KEY, v TEXT)');
  await rootQuery(socket(), "INSERT INTO paneldb.t VALUES (1, 'one'), (2, 'two')");
});

after(async () => {
  await t?.close();
});

test('REST: back up, list with sizes, restore into a new name; bad input 400; a viewer cannot; audited', async () => {
  const b = await t.request<{ data: { snapshots: { kind: string; name: string; snapshot: string }[] } }>(
    'POST',
    `${api}/backups`,
    { body: {} },
  );
  assert.equal(b.status, 201, b.text);
  assert.deepEqual(b.body.data.snapshots.map((s) => s.name).sort(), ['paneldb', SITE].sort());
  const site = (await snapshots()).find((s) => s.kind === 'site');
  assert.ok(site && site.sizeBytes !== null && site.sizeBytes > 0);
  const only = await t.request<{ data: { snapshots: Snap[] } }>(
    'GET',
    `${api}/backups?kind=database&name=paneldb`,
  );
  assert.deepEqual(
    only.body.data.snapshots.map((s) => s.name),
    ['paneldb'],
  );
  const badKind = await t.request('GET', `${api}/backups?kind=everything`);
  assert.equal(badKind.status, 400, badKind.text);

  const bad = await t.request<{ error: { code: string; message: string } }>(
    'POST',
    `${api}/backups/${encodeURIComponent('latest; rm -rf /')}/restore`,
    { body: {} },
  );
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'invalid-argument');
  assert.match(bad.body.error.message, /snapshot id/);
  const badAs = await t.request('POST', `${api}/backups/${site.shortId}/restore`, {
    body: { as: '../../etc' },
  });
  assert.equal(badAs.status, 400, badAs.text);
  const badSettings = await t.request('PUT', `${api}/backups/settings`, { body: { keepDaily: -3 } });
  assert.equal(badSettings.status, 400, badSettings.text);
  const viewer = await t.request('POST', `${api}/backups`, { token: t.token('viewer'), body: {} });
  assert.equal(viewer.status, 403);

  const copy = await t.request('POST', `${api}/backups/${site.shortId}/restore`, {
    body: { as: 'copy.panel.test' },
  });
  assert.equal(copy.status, 200, copy.text);
  assert.match((await fetchSite(port, 'copy.panel.test')).body, /panel original/);
  assert.match((await fetchSite(port, SITE)).body, /panel original/);
  const settings = await t.request<{ data: { keepDaily: number } }>('PUT', `${api}/backups/settings`, {
    body: { keepDaily: 3 },
  });
  assert.equal(settings.body.data.keepDaily, 3);

  const audit = t.panel.ctx.audit.query({ hostId: HOST, limit: 200 }).rows;
  assert.ok(audit.some((r) => r.action === 'back up' && r.ok));
  assert.ok(audit.some((r) => r.action === 'restore backup' && r.ok));
  assert.ok(audit.some((r) => r.action === 'restore backup' && !r.ok && r.error_code === 'invalid-argument'));
});

test('dashboard: the Backups tab lists snapshots; a restore says what it replaces and needs its box; the trash restores in one click', async () => {
  const web = await t.signedIn('bkop', 'operator');
  const tab = `/hosts/${HOST}/backups`;
  const page = await web.get(tab);
  assert.equal(page.status, 200);
  assert.match(page.text, /id="backups-table"/);
  assert.match(
    page.text,
    new RegExp(`Replaces the files, vhost and FTP accounts of the website ${SITE.replace(/\./g, '\\.')}`),
  );
  assert.match(page.text, /The current state is backed up first/);
  const site = (await snapshots()).find((s) => s.kind === 'site' && s.name === SITE && s.reason === 'manual');
  assert.ok(site);

  await fsp.writeFile(path.join(sandbox, 'var/www', SITE, 'public_html/index.html'), '<p>changed</p>\n');
  const unticked = await web.submit(tab, `${tab}/${site.id}/restore`, {});
  assert.equal(unticked.status, 303);
  assert.match((await web.get(tab)).text, /Tick the box/);
  assert.match((await fetchSite(port, SITE)).body, /changed/, 'nothing restored without the box');
  const done = await web.submit(tab, `${tab}/${site.id}/restore`, { confirm: 'yes' });
  assert.equal(done.status, 303);
  assert.match((await web.get(tab)).text, /was restored from snapshot/);
  assert.match((await fetchSite(port, SITE)).body, /panel original/);

  // Delete with files through the Websites tab: the trash has it, one button brings it back.
  const del = await web.submit(`/hosts/${HOST}/websites`, `/hosts/${HOST}/websites/${SITE}/delete`, {
    confirm: 'yes',
    removeFiles: 'yes',
  });
  assert.equal(del.status, 303);
  assert.notEqual((await fetchSite(port, SITE)).body.includes('panel original'), true);
  const withTrash = await web.get(tab);
  assert.match(withTrash.text, /id="trash-table"/);
  const trash = (await snapshots()).find((s) => s.reason === 'trash' && s.name === SITE);
  assert.ok(trash);
  assert.match(withTrash.text, new RegExp(`action="/hosts/${HOST}/backups/${trash.id}/restore"`));
  const one = await web.submit(tab, `${tab}/${trash.id}/restore`, { confirm: 'yes' });
  assert.equal(one.status, 303);
  assert.match((await fetchSite(port, SITE)).body, /panel original/);

  const viewer = await t.signedIn('bkview', 'viewer');
  const v = await viewer.get(tab);
  assert.equal(v.status, 200);
  assert.doesNotMatch(v.text, /Back up now/);
});

test('a fan-out job backs up every host offering backups', async () => {
  const r = await t.request<{ data: { id: number } }>('POST', '/api/v1/jobs', {
    body: { event: 'back up', params: {}, target: { module: 'backups' } },
  });
  assert.equal(r.status, 202, r.text);
  const until = Date.now() + 120_000;
  let job: { state: string; hosts: { hostId: string; state: string }[] } = { state: 'queued', hosts: [] };
  while (Date.now() < until) {
    job = (await t.request<{ data: typeof job }>('GET', `/api/v1/jobs/${r.body.data.id}`)).body.data;
    if (job.state !== 'queued' && job.state !== 'running') break;
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.equal(job.state, 'done', JSON.stringify(job));
  assert.deepEqual(
    job.hosts.map((h) => `${h.hostId}:${h.state}`).sort(),
    [`${BARE}:ok`, `${HOST}:ok`],
    JSON.stringify(job),
  );
});
