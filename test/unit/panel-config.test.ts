import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadPanelConfig, PanelConfigError } from '../../server/config.ts';
import { tempDir } from '../helpers/tmp.ts';

// The panel's configuration sources: what `npm start` gets with nothing set, and the precedence
// defaults < --config file < PONIO_PANEL_* < flags (server/config.ts).

test('defaults: HTTPS on 127.0.0.1:8443, data in ./data, no proxy headers trusted', () => {
  const c = loadPanelConfig({}, {});
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8443);
  assert.equal(c.dataDir, path.resolve('data'));
  assert.equal(c.trustProxy, false);
  assert.equal(c.tlsCert, undefined);
  assert.equal(c.hostCertLifetimeSeconds, 90 * 86_400);
});

test('precedence: flags beat PONIO_PANEL_* which beat the config file', () => {
  const dir = tempDir('ponio-pcfg-');
  const file = path.join(dir, 'panel.json');
  writeFileSync(file, JSON.stringify({ host: '127.0.0.2', port: 9001, dataDir: '/srv/a', logLevel: 'warn' }));
  const fromFile = loadPanelConfig({ config: file }, {});
  assert.deepEqual(
    [fromFile.host, fromFile.port, fromFile.dataDir, fromFile.logLevel],
    ['127.0.0.2', 9001, '/srv/a', 'warn'],
  );
  const env = { PONIO_PANEL_CONFIG: file, PONIO_PANEL_PORT: '9002', PONIO_PANEL_DATA_DIR: '/srv/b' };
  const fromEnv = loadPanelConfig({}, env);
  assert.deepEqual([fromEnv.host, fromEnv.port, fromEnv.dataDir], ['127.0.0.2', 9002, '/srv/b']);
  const fromFlags = loadPanelConfig({ port: '9003' }, env);
  assert.equal(fromFlags.port, 9003);
  assert.equal(fromFlags.dataDir, '/srv/b');
  assert.deepEqual(loadPanelConfig({}, { PONIO_PANEL_TRUST_PROXY: 'loopback' }).trustProxy, ['loopback']);
});

test('bad values are refused with a message naming the setting', () => {
  const bad: [Record<string, unknown>, NodeJS.ProcessEnv, RegExp][] = [
    [{ port: '70000' }, {}, /port/],
    [{}, { PONIO_PANEL_PORT: 'http' }, /port/],
    [{ logLevel: 'loud' }, {}, /logLevel/],
    [{ tlsCert: '/x.crt' }, {}, /tlsCert and tlsKey go together/],
    [{ publicUrl: 'not a url' }, {}, /publicUrl/],
    [{ config: '/nonexistent/panel.json' }, {}, /cannot read config file/],
    [{ bogus: 1 }, {}, /bogus|Unrecognized/i],
  ];
  for (const [flags, env, msg] of bad)
    assert.throws(
      () => loadPanelConfig(flags, env),
      (e: Error) => e instanceof PanelConfigError && msg.test(e.message),
      JSON.stringify(flags),
    );
});
