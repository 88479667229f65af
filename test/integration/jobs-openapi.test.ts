// The jobs part of the OpenAPI document against the panel's real replies: every jobs route is
// called (with a real agent, an offline host, a cancelled and a retried job) and each success
// reply is validated against the response schema the served /api/v1/openapi.json states for it,
// turned into a validator by zod's own JSON Schema reader. Objects there are closed
// (additionalProperties: false), so an undocumented field fails as well as a missing one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { JOB_ROUTES } from '../../server/api/openapi-jobs.ts';

let t: TestPanel;
let doc: { paths: Record<string, Record<string, { responses: Record<string, any> }>> };
const checked = new Set<string>();

before(async () => {
  t = await startTestPanel();
  await t.addSandboxHost('oa1', { modules: { websites: false, ftp: false, mysql: false, firewall: false } });
  // A host that never comes online (nothing listens on port 1): unreachable in every job.
  t.panel.ctx.hosts.repo.insert({ id: 'oa2', name: 'oa2', address: '127.0.0.1', port: 1 });
  t.panel.ctx.hosts.repo.markEnrolled('oa2', '01', Date.now() + 86_400_000);
  const row = t.panel.ctx.hosts.repo.get('oa2');
  if (row) t.panel.ctx.hosts.connect(row);
  const r = await t.request<typeof doc>('GET', '/api/v1/openapi.json');
  assert.equal(r.status, 200);
  doc = r.body;
});
after(async () => {
  await t?.close();
});

/** Calls a route and validates the reply against the document's schema for that status. */
async function call(
  method: string,
  docPath: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const r = await t.request<any>(method.toUpperCase(), `/api/v1${url}`, body === undefined ? {} : { body });
  const op = doc.paths[docPath]?.[method];
  assert.ok(op, `${method} ${docPath} is in the document`);
  const res = op.responses[String(r.status)];
  assert.ok(res, `${method} ${url}: status ${r.status} is documented (${r.text.slice(0, 300)})`);
  const schema = res.content['application/json'].schema;
  const out = z.fromJSONSchema(schema).safeParse(r.body);
  assert.ok(
    out.success,
    `${method} ${url} (${r.status}) does not match the document: ${out.success ? '' : JSON.stringify(out.error.issues.slice(0, 5))}\n${r.text.slice(0, 600)}`,
  );
  // The envelope: exactly the documented top-level fields (data, and e.g. total).
  assert.deepEqual(Object.keys(r.body as object).sort(), Object.keys(schema.properties as object).sort());
  checked.add(`${method} ${docPath}`);
  return r;
}

async function finished(id: number): Promise<any> {
  const end = Date.now() + 30_000;
  for (;;) {
    const r = await call('get', '/jobs/{id}', `/jobs/${id}`);
    if (r.body.data.state !== 'queued' && r.body.data.state !== 'running') return r.body.data;
    assert.ok(Date.now() < end, `job ${id} still ${r.body.data.state}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

test('every jobs route replies exactly what openapi.json documents', async () => {
  // The document's objects are closed: a reply with a field it does not name would fail.
  const list = doc.paths['/jobs']?.get?.responses['200'].content['application/json'].schema;
  assert.equal(list.properties.data.items.additionalProperties, false);
  assert.deepEqual(list.required, ['data', 'total']);

  const preview = await call('post', '/jobs/preview', '/jobs/preview', {
    target: { all: true },
    event: 'ping',
  });
  assert.equal(preview.body.data.count, 2);

  // A job with a reply (ping on oa1) and an unreachable host (oa2).
  const started = await call('post', '/jobs', '/jobs', { event: 'ping', target: { all: true } });
  assert.equal(started.status, 202);
  const done = await finished(started.body.data.id as number);
  assert.equal(done.counts.ok, 1);
  assert.equal(done.counts.unreachable, 1);
  assert.ok(done.hosts.some((h: any) => h.state === 'ok' && h.data !== null));
  await call('get', '/jobs/{id}', `/jobs/${done.id}?hostState=unreachable`);

  const listed = await call('get', '/jobs', '/jobs?limit=1');
  assert.equal(listed.body.total, 1);
  await call('get', '/jobs', '/jobs?state=done');

  // Retry reaches the unreachable host again.
  const retried = await call('post', '/jobs/{id}/retry', `/jobs/${done.id}/retry`);
  assert.equal(retried.status, 202);
  await finished(done.id as number);

  // Cancel while it runs (one host at a time, a pause between starts), then resume the rest.
  const slow = await call('post', '/jobs', '/jobs', {
    event: 'ping',
    target: { hosts: ['oa1', 'oa2'] },
    window: 1,
    pauseSeconds: 2,
  });
  const cancelled = await call('post', '/jobs/{id}/cancel', `/jobs/${slow.body.data.id}/cancel`);
  assert.equal(cancelled.status, 200);
  const after = await finished(slow.body.data.id as number);
  assert.equal(after.state, 'cancelled');
  const resumed = await call('post', '/jobs/{id}/resume', `/jobs/${after.id}/resume`);
  assert.equal(resumed.status, 202);
  await finished(after.id as number);

  // A dry run, and the labels routes.
  const dry = await call('post', '/jobs', '/jobs', { event: 'ping', target: { all: true }, dryRun: true });
  await finished(dry.body.data.id as number);
  await call('put', '/hosts/{hostId}/labels', '/hosts/oa1/labels', { labels: 'role=web, dc=ams' });
  const labels = await call('get', '/hosts/{hostId}/labels', '/hosts/oa1/labels');
  assert.deepEqual(labels.body.data, { role: 'web', dc: 'ams' });

  // Every route of the jobs table was exercised.
  const documented = JOB_ROUTES.map((r) => `${r.method} ${r.path}`).sort();
  assert.deepEqual([...checked].sort(), documented);
});
