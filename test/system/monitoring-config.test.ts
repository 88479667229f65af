import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/agent-process.ts';
import { promtool } from '../helpers/prometheus.ts';
import { tempDir } from '../helpers/tmp.ts';

const DIR = path.join(ROOT, 'deploy/monitoring');
const ALERTS = [
  'PonioHostOffline',
  'PonioLinkFlapping',
  'PonioCertificateExpiringSoon',
  'PonioCertificateRenewalFailed',
  'PonioJobFailureRate',
  'PonioAgentLockWaitHigh',
];

test('the alert rules pass promtool check rules and name every alert ops asked for', async () => {
  const r = await promtool(['check', 'rules', path.join(DIR, 'alerts.yml')]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS: \d+ rules found/);
  const text = readFileSync(path.join(DIR, 'alerts.yml'), 'utf8');
  for (const a of ALERTS) assert.match(text, new RegExp(`alert: ${a}\\n`), a);
});

test('the alert rules fire as their unit tests say (promtool test rules)', async () => {
  const r = await promtool(['test', 'rules', path.join(DIR, 'alerts.test.yml')]);
  assert.equal(r.code, 0, r.out);
  const tests = readFileSync(path.join(DIR, 'alerts.test.yml'), 'utf8');
  for (const a of ALERTS) assert.match(tests, new RegExp(`alertname: ${a}\\n`), `${a} has a unit test`);
});

test('the example prometheus.yml passes promtool check config (with its files in place)', async () => {
  const dir = tempDir('ponio-promcfg-');
  const token = path.join(dir, 'token');
  const ca = path.join(dir, 'ca.crt');
  writeFileSync(token, 'x'.repeat(40));
  writeFileSync(ca, '');
  copyFileSync(path.join(DIR, 'alerts.yml'), path.join(dir, 'alerts.yml'));
  const cfg = readFileSync(path.join(DIR, 'prometheus.yml'), 'utf8')
    .replace('/etc/prometheus/ponio-metrics.token', token)
    .replace('/etc/prometheus/ponio-ca.crt', ca);
  assert.notEqual(cfg, readFileSync(path.join(DIR, 'prometheus.yml'), 'utf8'));
  writeFileSync(path.join(dir, 'prometheus.yml'), cfg);
  const r = await promtool(['check', 'config', path.join(dir, 'prometheus.yml')]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS: 1 rule files found/);
});

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; expr: string }[];
}

test('the Grafana dashboard is valid JSON with a sound panel layout and a query per panel', () => {
  const dash = JSON.parse(readFileSync(path.join(DIR, 'grafana-dashboard.json'), 'utf8')) as {
    uid: string;
    title: string;
    schemaVersion: number;
    panels: Panel[];
    templating: { list: { name: string }[] };
  };
  assert.equal(dash.uid, 'ponio-overview');
  assert.ok(dash.schemaVersion >= 30);
  assert.deepEqual(
    dash.templating.list.map((v) => v.name),
    ['datasource', 'host'],
  );
  const ids = dash.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dash.panels) {
    assert.ok(p.title, `panel ${p.id} has a title`);
    assert.ok(
      p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24,
      `${p.title} fits the grid`,
    );
    if (p.type === 'row') continue;
    assert.ok(p.targets && p.targets.length > 0, `${p.title} has a query`);
    for (const t of p.targets) assert.match(t.expr, /\b(ponio_|process_|nodejs_)/, `${p.title}: ${t.expr}`);
  }
});
