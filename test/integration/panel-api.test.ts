import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';

let t: TestPanel;
before(async () => {
  t = await startTestPanel();
  await t.addSandboxHost('sbx1');
});
after(async () => {
  await t.close();
});

test('the API lists hosts with their live state and reaches the agent', async () => {
  const list = await t.request<{ data: { id: string; connection: { state: string } }[] }>(
    'GET',
    '/api/v1/hosts',
  );
  assert.equal(list.status, 200);
  assert.equal(list.body.data[0]?.id, 'sbx1');
  assert.equal(list.body.data[0]?.connection.state, 'online');
  const ping = await t.request<{ data: { pong: boolean } }>('POST', '/api/v1/hosts/sbx1/ping');
  assert.equal(ping.status, 200);
  assert.equal(ping.body.data.pong, true);
  const info = await t.request<{ data: { hostname: string } }>('GET', '/api/v1/hosts/sbx1/system');
  assert.equal(info.status, 200);
  assert.ok(info.body.data.hostname.length > 0);
});

test('API errors are JSON with a proper status', async () => {
  const noAuth = await t.request('GET', '/api/v1/hosts', { token: null });
  assert.equal(noAuth.status, 401);
  assert.equal(noAuth.body.error.code, 'unauthenticated');
  const badToken = await t.request('GET', '/api/v1/hosts', { token: 'pio_nottherightone' });
  assert.equal(badToken.status, 401);
  const missing = await t.request('GET', '/api/v1/hosts/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'not-found');
  const nowhere = await t.request('GET', '/api/v1/nowhere');
  assert.equal(nowhere.status, 404);
  const badJson = await t.request('POST', '/api/v1/hosts/sbx1/ping', {
    rawBody: '{nope',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(badJson.status, 400);
  assert.equal(badJson.body.error.code, 'invalid-argument');
});

test('security headers are set', async () => {
  const r = await t.request('GET', '/api/v1/hosts');
  assert.match(String(r.headers['content-security-policy']), /script-src 'self'/);
  assert.equal(r.headers['x-powered-by'], undefined);
});
