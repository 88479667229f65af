// agent/config.ts: where the agent's settings come from (flags > PONIO_AGENT_* > config file >
// defaults) and the one-sentence ConfigError for each kind of bad input.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, checkListen, loadAgentConfig, readTlsFiles } from '../../agent/config.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/tmp.ts';

const dir = tempDir('ponio-agent-config-');
let n = 0;
function file(content: string, name = `config-${++n}.json`): string {
  const f = path.join(dir, name);
  writeFileSync(f, content);
  return f;
}
const json = (v: unknown): string => file(JSON.stringify(v));

/** Asserts a ConfigError whose one-line message matches every pattern. */
function configError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

describe('loadAgentConfig: sources and precedence', () => {
  test('defaults: 0.0.0.0:7443, info, the system layout and its /etc/ponio-agent files', () => {
    const c = loadAgentConfig({}, {});
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.port, 7443);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.layout.mode, 'system');
    assert.equal(c.certFile, '/etc/ponio-agent/agent.crt');
    assert.equal(c.keyFile, '/etc/ponio-agent/agent.key');
    assert.equal(c.caFile, '/etc/ponio-agent/ca.crt');
    assert.equal(c.revokedFile, '/var/lib/ponio-agent/revoked.json');
    assert.deepEqual(c.modules, {});
  });

  test('every PONIO_AGENT_* variable is honoured; empty ones are ignored', () => {
    const sandbox = path.join(dir, 'sb');
    const c = loadAgentConfig(
      {},
      {
        PONIO_AGENT_LISTEN: '127.0.0.1:9001',
        PONIO_AGENT_CERT: '/env/a.crt',
        PONIO_AGENT_KEY: '/env/a.key',
        PONIO_AGENT_CA: '/env/ca.crt',
        PONIO_AGENT_SANDBOX: sandbox,
        PONIO_AGENT_LOG_LEVEL: 'debug',
      },
    );
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 9001);
    assert.equal(c.certFile, '/env/a.crt');
    assert.equal(c.keyFile, '/env/a.key');
    assert.equal(c.caFile, '/env/ca.crt');
    assert.equal(c.layout.mode, 'sandbox');
    assert.equal(c.revokedFile, path.join(sandbox, 'var/lib/ponio-agent/revoked.json'));
    assert.equal(c.logLevel, 'debug');
    const empty = loadAgentConfig({}, { PONIO_AGENT_LISTEN: '', PONIO_AGENT_LOG_LEVEL: '' });
    assert.equal(empty.port, 7443);
    assert.equal(empty.logLevel, 'info');
  });

  test('flags > environment > config file > defaults, setting by setting', () => {
    const cfgFile = json({
      listen: '127.0.0.1:7001',
      logLevel: 'warn',
      cert: '/file/a.crt',
      key: '/file/a.key',
    });
    const env = {
      PONIO_AGENT_LISTEN: '127.0.0.1:7002',
      PONIO_AGENT_LOG_LEVEL: 'error',
      PONIO_AGENT_CERT: '/env/a.crt',
    };
    // File alone.
    const f = loadAgentConfig({ config: cfgFile }, {});
    assert.deepEqual(
      [f.port, f.logLevel, f.certFile, f.keyFile],
      [7001, 'warn', '/file/a.crt', '/file/a.key'],
    );
    // Environment over the file, only for what it sets.
    const e = loadAgentConfig({ config: cfgFile }, env);
    assert.deepEqual(
      [e.port, e.logLevel, e.certFile, e.keyFile],
      [7002, 'error', '/env/a.crt', '/file/a.key'],
    );
    // Flags over both; an undefined flag does not hide the others.
    const fl = loadAgentConfig(
      { config: cfgFile, listen: '127.0.0.1:7003', logLevel: undefined, key: '/flag/a.key' },
      env,
    );
    assert.deepEqual(
      [fl.port, fl.logLevel, fl.certFile, fl.keyFile],
      [7003, 'error', '/env/a.crt', '/flag/a.key'],
    );
    // Defaults fill in what nobody set; the CA defaults to the config file's directory.
    assert.equal(fl.caFile, path.join(dir, 'ca.crt'));
  });

  test('PONIO_AGENT_CONFIG names the config file; --config wins over it', () => {
    const a = json({ listen: '127.0.0.1:7101' });
    const b = json({ listen: '127.0.0.1:7102' });
    assert.equal(loadAgentConfig({}, { PONIO_AGENT_CONFIG: a }).port, 7101);
    assert.equal(loadAgentConfig({ config: b }, { PONIO_AGENT_CONFIG: a }).port, 7102);
    // The certificate files default to the config file's directory (as enroll writes them).
    const c = loadAgentConfig({}, { PONIO_AGENT_CONFIG: a });
    assert.equal(c.certFile, path.join(dir, 'agent.crt'));
    assert.equal(c.keyFile, path.join(dir, 'agent.key'));
  });

  test('a sandbox puts the default files under DIR/etc/ponio-agent, even with a config file', () => {
    const sb = path.join(dir, 'sandbox');
    const c = loadAgentConfig({ config: json({ sandbox: sb }) }, {});
    assert.equal(c.layout.mode, 'sandbox');
    assert.equal(c.certFile, path.join(sb, 'etc/ponio-agent/agent.crt'));
  });

  test('listen forms: IPv4, [IPv6], names, * for all addresses', () => {
    const at = (listen: string): [string, number] => {
      const c = loadAgentConfig({ listen }, {});
      return [c.host, c.port];
    };
    assert.deepEqual(at('[::1]:7443'), ['::1', 7443]);
    assert.deepEqual(at('localhost:1'), ['localhost', 1]);
    assert.deepEqual(at('*:8000'), ['0.0.0.0', 8000]);
    assert.deepEqual(at('0.0.0.0:0'), ['0.0.0.0', 0]);
  });
});

describe('loadAgentConfig: bad input is one ConfigError line naming the problem and its source', () => {
  test('a bad listen address, from a flag, a variable or the file', () => {
    configError(
      () => loadAgentConfig({ listen: 'nonsense' }, {}),
      /listen: must be HOST:PORT/,
      /\(from --listen\)/,
    );
    configError(() => loadAgentConfig({ listen: '127.0.0.1:70000' }, {}), /port must be 0–65535/);
    configError(
      () => loadAgentConfig({}, { PONIO_AGENT_LISTEN: 'x:y' }),
      /listen: must be HOST:PORT/,
      /\(from PONIO_AGENT_LISTEN\)/,
    );
    const f = json({ listen: 7443 });
    configError(
      () => loadAgentConfig({ config: f }, {}),
      /listen: /,
      new RegExp(`\\(from config file ${f}\\)`),
    );
    // A good flag hides a bad variable.
    assert.equal(loadAgentConfig({ listen: '127.0.0.1:1' }, { PONIO_AGENT_LISTEN: 'bad' }).port, 1);
  });

  test('a bad log level from the environment', () => {
    configError(
      () => loadAgentConfig({}, { PONIO_AGENT_LOG_LEVEL: 'loud' }),
      /invalid agent configuration: logLevel: /,
      /\(from PONIO_AGENT_LOG_LEVEL\)/,
    );
  });

  test('config file: missing, not JSON, not an object, unknown settings', () => {
    configError(
      () => loadAgentConfig({ config: path.join(dir, 'nope.json') }, {}),
      /cannot read config file .*nope\.json: ENOENT/,
    );
    configError(() => loadAgentConfig({}, { PONIO_AGENT_CONFIG: path.join(dir, 'nope.json') }), /ENOENT/);
    configError(
      () => loadAgentConfig({ config: file('{ "listen": ') }, {}),
      /config file .* is not a JSON object: /,
    );
    configError(
      () => loadAgentConfig({ config: file('{\n  "listen": "a",\n  oops\n}') }, {}),
      /is not a JSON object/,
    );
    configError(() => loadAgentConfig({ config: file('[1, 2]') }, {}), /is not a JSON object: not an object/);
    configError(() => loadAgentConfig({ config: file('null') }, {}), /is not a JSON object/);
    const f = json({ listen: '127.0.0.1:1', lisen: 'typo' });
    configError(
      () => loadAgentConfig({ config: f }, {}),
      /unknown setting\(s\) lisen/,
      /\(from config file /,
    );
    if (process.getuid?.() !== 0) {
      const locked = json({});
      chmodSync(locked, 0o000);
      configError(() => loadAgentConfig({ config: locked }, {}), /cannot read config file .*: EACCES/);
    }
  });

  test('checkListen (enroll --listen) uses the same rule', () => {
    checkListen('127.0.0.1:7443', '--listen');
    configError(() => checkListen('bad', '--listen'), /^invalid --listen "bad": must be HOST:PORT/);
  });
});

describe('readTlsFiles', () => {
  let pki: TestPki;
  before(async () => {
    pki = await makeTestPki();
  });
  const tlsOf = (certFile: string, keyFile: string, caFile: string) => {
    const cfg = loadAgentConfig({ cert: certFile, key: keyFile, ca: caFile }, {});
    return () => readTlsFiles(cfg);
  };

  test('reads a matching certificate, key and CA', async () => {
    const a = await pki.agent('web1');
    const tls = tlsOf(a.certFile, a.keyFile, a.caFile)();
    assert.equal(tls.certPem, a.certPem);
    assert.equal(tls.keyPem, a.keyPem);
    assert.equal(tls.caPem, pki.ca.certPem);
  });

  test('a missing, non-PEM or broken file is named', async () => {
    const a = await pki.agent('web1');
    configError(
      tlsOf('/nonexistent.crt', a.keyFile, a.caFile),
      /^cannot read certificate \/nonexistent\.crt: ENOENT$/,
    );
    configError(
      tlsOf(a.certFile, '/nonexistent.key', a.caFile),
      /^cannot read key \/nonexistent\.key: ENOENT$/,
    );
    configError(
      tlsOf(a.certFile, a.keyFile, '/nonexistent-ca.crt'),
      /^cannot read CA certificate \/nonexistent-ca\.crt: ENOENT$/,
    );
    const text = file('hello', 'plain.crt');
    configError(tlsOf(text, a.keyFile, a.caFile), /^certificate .*plain\.crt is not a PEM file$/);
    const broken = file('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'broken.crt');
    configError(
      tlsOf(broken, a.keyFile, a.caFile),
      /^certificate .*broken\.crt is not a valid X\.509 certificate$/,
    );
    configError(
      tlsOf(a.certFile, a.keyFile, broken),
      /^CA certificate .*broken\.crt is not a valid X\.509 certificate$/,
    );
    const badKey = file('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'broken.key');
    configError(tlsOf(a.certFile, badKey, a.caFile), /^key .*broken\.key is not a valid private key$/);
  });

  test('a certificate and key that do not match', async () => {
    const a = await pki.agent('web1');
    const b = await pki.agent('web1');
    configError(
      tlsOf(a.certFile, b.keyFile, a.caFile),
      new RegExp(`^certificate ${a.certFile} and key ${b.keyFile} do not match$`),
    );
  });
});
