// Issue 15's smaller HTTP holes against a real panel: caching of signed-in pages, refused-call
// audit params, malformed percent-encoding, and `--trust-proxy true`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { tempDir } from '../helpers/tmp.ts';
import { loadPanelConfig, PanelConfigError } from '../../server/config.ts';

let t: TestPanel;
const errors: unknown[] = [];

before(async () => {
  t = await startTestPanel();
  // Any error-level log line of the panel is a failure here (a stack trace for a client mistake).
  const logger = t.panel.ctx.logger as unknown as { error: (...a: unknown[]) => void };
  logger.error = (...a: unknown[]) => errors.push(a);
  t.panel.ctx.hosts.repo.insert({ id: 'nohost', name: 'nohost', address: '127.0.0.1', port: 9 });
});
after(async () => {
  await t.close();
});

test('signed-in pages and API replies carry Cache-Control: no-store', async () => {
  const web = await t.signedIn('cacheadm', 'admin');
  for (const p of ['/', '/users', '/audit', '/account/password']) {
    const r = await web.get(p);
    assert.equal(r.status, 200, p);
    assert.equal(r.headers['cache-control'], 'no-store', p);
  }
  const api = await t.request('GET', '/api/v1/hosts');
  assert.equal(api.status, 200);
  assert.equal(api.headers['cache-control'], 'no-store');
});

test('the audit of a refused call keeps only the keys of the request (no stray secrets)', async () => {
  const r = await t.request('POST', '/api/v1/hosts/nohost/ftp-users', {
    body: { username: 'ftpuser1', password: 'a good ftp password', pwd: 'Sup3r-secret-typo' },
    token: t.token('operator'),
  });
  assert.equal(r.status, 400, r.text);
  const row = t.panel.ctx.audit.query({ action: 'create ftp user' }).rows[0];
  assert.ok(row);
  assert.equal(row.ok, 0);
  assert.ok(!(row.params ?? '').includes('Sup3r-secret-typo'), `params: ${row.params}`);
  assert.deepEqual(JSON.parse(row.params ?? 'null'), { username: 'ftpuser1', password: '[redacted]' });
});

test('malformed percent-encoding is a 400 with a sentence, never a 500 or an error log', async () => {
  for (const p of ['/static/%E0%A4%A.js', '/api/v1/hosts/%E0%A4%A', '/hosts/%E0%A4%A/websites', '/%ZZ']) {
    for (const accept of ['text/html', 'application/json']) {
      const r = await t.request('GET', p, { headers: { accept } });
      assert.equal(r.status, 400, `${p}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.match(r.text, /malformed percent-encoding/);
      assert.doesNotMatch(r.text, /URIError|at decode/);
    }
  }
  assert.deepEqual(errors, [], 'nothing logged as an error');
});

test('trustProxy true or a hop count is refused; named proxies are accepted', () => {
  for (const v of [true, 'true', 1, '2']) {
    assert.throws(
      () => loadPanelConfig({ trustProxy: v }, {}),
      (e: unknown) => e instanceof PanelConfigError && /name the proxies/.test(e.message),
      String(v),
    );
  }
  assert.throws(() => loadPanelConfig({}, { PONIO_PANEL_TRUST_PROXY: '10.0.0.0/99' }), /not an address/);
  assert.equal(loadPanelConfig({ trustProxy: 'false' }, {}).trustProxy, false);
  assert.deepEqual(loadPanelConfig({}, { PONIO_PANEL_TRUST_PROXY: '10.0.0.1, loopback' }).trustProxy, [
    '10.0.0.1',
    'loopback',
  ]);
  // The real command line refuses it before anything starts.
  const data = path.join(tempDir('ponio-tp-'), 'data');
  const r = spawnSync(
    process.execPath,
    [path.resolve('bin/ponio-panel.js'), 'serve', '--trust-proxy', 'true', '--port', '0', '--data-dir', data],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /trustProxy: name the proxies/);
});
