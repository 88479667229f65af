import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readiness } from '../../shared/health.ts';
import { bearerMatches } from '../../server/metrics/http.ts';
import { limiterOf } from '../../server/metrics/index.ts';
import { eventLabel, outcomeLabel } from '../../server/metrics/panel-metrics.ts';
import { loadPanelConfig, PanelConfigError } from '../../server/config.ts';
import { tempDir } from '../helpers/tmp.ts';

test('readiness: ready only when every probe passes; a throwing or hanging probe fails', async () => {
  const r = new Readiness(50).add('good', () => true).add('async good', () => Promise.resolve(true));
  assert.deepEqual(await r.run(), {
    ready: true,
    checks: [
      { name: 'good', ok: true },
      { name: 'async good', ok: true },
    ],
  });
  r.add('throws', () => {
    throw new Error('boom');
  });
  r.add('hangs', () => new Promise<boolean>(() => undefined));
  r.add('false', () => false);
  const report = await r.run();
  assert.equal(report.ready, false);
  assert.deepEqual(
    report.checks.filter((c) => !c.ok).map((c) => c.name),
    ['throws', 'hangs', 'false'],
  );
  assert.throws(() => r.add('good', () => true), /twice/);
  assert.throws(() => r.add('Bad\nName', () => true), /bad probe name/);
});

test('bearer check: exact token only', () => {
  const t = 'a'.repeat(32);
  assert.ok(bearerMatches(`Bearer ${t}`, t));
  for (const h of [
    undefined,
    '',
    t,
    `bearer ${t}`,
    `Bearer ${t}x`,
    `Bearer ${t} `,
    `Bearer  ${t}`,
    'Bearer a',
  ])
    assert.equal(bearerMatches(h, t), false, String(h));
});

test('labels stay bounded: unknown events and error codes collapse to "other"', () => {
  assert.equal(eventLabel('system info'), 'system info');
  assert.equal(eventLabel('example.com'), 'other');
  assert.equal(outcomeLabel({ ok: true }), 'ok');
  assert.equal(outcomeLabel({ ok: false, error: { code: 'timeout' } }), 'timeout');
  assert.equal(outcomeLabel({ ok: false, error: { code: 'evil\nlabel' } }), 'other');
  assert.equal(limiterOf('/login?next=/x'), 'login');
  assert.equal(limiterOf('/enroll'), 'enroll');
  assert.equal(limiterOf('/agent/install.sh'), 'agent-download');
  assert.equal(limiterOf('/somewhere/example.com'), 'other');
});

test('metrics token: from the config or a file, never both, at least 24 printable characters', () => {
  const dir = tempDir('ponio-metrics-cfg-');
  const file = path.join(dir, 'token');
  const token = 'x'.repeat(40);
  writeFileSync(file, `${token}\n`);
  assert.equal(loadPanelConfig({ metricsTokenFile: file }, {}).metricsToken, token);
  assert.equal(loadPanelConfig({}, { PONIO_PANEL_METRICS_TOKEN: token }).metricsToken, token);
  assert.equal(loadPanelConfig({}, {}).metricsToken, undefined);
  assert.throws(() => loadPanelConfig({ metricsToken: token, metricsTokenFile: file }, {}), /not both/);
  assert.throws(() => loadPanelConfig({ metricsToken: 'short' }, {}), /at least 24/);
  assert.throws(() => loadPanelConfig({ metricsToken: `${token} x` }, {}), /without spaces/);
  writeFileSync(file, 'short\n');
  assert.throws(() => loadPanelConfig({ metricsTokenFile: file }, {}), PanelConfigError);
  assert.throws(() => loadPanelConfig({ metricsTokenFile: path.join(dir, 'missing') }, {}), /cannot read/);
});
