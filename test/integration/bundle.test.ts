// The single-file agent bundle (npm run build) runs with nothing but Node.js: copied alone into an
// empty directory, it starts, serves the panel over mutual TLS and answers `ping`. The parts it
// loads only when a service is there (a domain module, the MariaDB driver) work from the bundle too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { issueCertificate } from '../../shared/pki/index.ts';
import { PONIO_VERSION } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { tryAgentConnection } from '../helpers/agent-client.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import {
  buildAgentBundle,
  parseReady,
  run,
  spawnUntil,
  stopChild,
  withoutServices,
} from '../../bench/lib.ts';

let pki: TestPki;
let dir: string;
let bundle: string;
let agent: ChildProcess | null = null;
let port = 0;
let readyModules: Array<{ name: string; available: boolean; reason?: string }> = [];

before(async () => {
  requireRoot('the bundle test (it hides the service programs in a private mount namespace)');
  requireProgram('unshare', 'util-linux');
  pki = await makeTestPki();
  const built = await buildAgentBundle();
  // Alone in an empty directory far from the repository's node_modules.
  dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-bundle-'));
  bundle = path.join(dir, 'ponio-agent.cjs');
  copyFileSync(built, bundle);
  rmSync(path.dirname(path.dirname(built)), { recursive: true, force: true });
  const files = await pki.agent('bundled');
  // Services hidden: this test is about the bundle, not about starting Apache or MariaDB.
  const cmd = withoutServices(process.execPath, [
    bundle,
    'serve',
    '--listen',
    '127.0.0.1:0',
    '--cert',
    files.certFile,
    '--key',
    files.keyFile,
    '--ca',
    files.caFile,
    '--sandbox',
    path.join(dir, 'sandbox'),
  ]);
  const started = await spawnUntil(cmd.file, cmd.args, (l) => parseReady(l) !== null, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  agent = started.proc;
  const ready = parseReady(started.line)!;
  port = ready.port;
  readyModules = ready.modules;
});

after(async () => {
  if (agent) await stopChild(agent);
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

test('the bundle is one self-contained CommonJS file: no import or require of a package left outside it', () => {
  const text = readFileSync(bundle, 'utf8');
  assert.ok(text.startsWith("#!/usr/bin/env node\n'use strict';\n"), 'a node shebang, then strict mode');
  // CommonJS: no ESM syntax (Node's ESM loader costs ~1 MB of idle RSS, docs/benchmarks.md).
  // A method named `import` (called as `.import(x)` or defined as `import(x){`, as in @peculiar/x509's
  // X509Certificates, bundled for ACME) is not a dynamic import.
  assert.doesNotMatch(
    text,
    /^import\s|\bimport\.meta\b|(?<![.\w$])import\((?![\w$,\s]*\)\s*\{)/m,
    'no ESM import',
  );
  const required = [...text.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!);
  assert.ok(required.includes('node:tls'), 'the require scan sees the bundle’s requires');
  // Only built-ins, and the optional accelerators ws and debug load in a try/catch.
  const optional = new Set(['bufferutil', 'utf-8-validate', 'supports-color']);
  const builtin = new Set(builtinModules);
  const foreign = required.filter((s) => !s.startsWith('node:') && !builtin.has(s) && !optional.has(s));
  assert.deepEqual(foreign, [], `requires outside the bundle: ${foreign.join(', ')}`);
  assert.doesNotMatch(text, /\.node["']\)/, 'no native addon is loaded');
});

test('the bundle runs as CommonJS also next to a package.json that says "type": "module"', async () => {
  const esmDir = mkdtempSync(path.join(dir, 'esm-'));
  writeFileSync(path.join(esmDir, 'package.json'), '{ "type": "module" }\n');
  const there = path.join(esmDir, 'ponio-agent.cjs');
  copyFileSync(bundle, there);
  assert.equal((await run(process.execPath, [there, '--version'])).trim(), PONIO_VERSION);
});

test('--version prints the package version', async () => {
  const out = await run(process.execPath, [bundle, '--version']);
  assert.equal(out.trim(), PONIO_VERSION);
});

test('the bundled agent answers ping over mutual TLS through the panel connection manager', async () => {
  assert.equal(readyModules.find((m) => m.name === 'system')?.available, true);
  const m = testManager(pki);
  try {
    m.add({ id: 'bundled', address: '127.0.0.1', port });
    const st = await m.waitForState('bundled', 'online');
    assert.equal(st.hello?.agentVersion, PONIO_VERSION);
    const r = await m.call('bundled', 'ping', {});
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.data.pong, true);
    assert.equal(r.data.agentVersion, PONIO_VERSION);
  } finally {
    await m.close();
  }
});

test('on a host without services, each module says why it is unavailable, in hello and in its replies', async () => {
  const reasons = {
    websites: 'Apache is not installed on this host (apt-get install apache2).',
    ftp: 'proftpd is not installed on this host (apt-get install proftpd-core).',
    mysql: 'MariaDB is not installed on this host (apt-get install mariadb-server).',
    firewall:
      'In sandbox mode the firewall needs a network namespace of its own: set modules.firewall.netns to a namespace name (or "self" when the agent runs inside one).',
    backups: 'restic is not installed on this host (apt-get install restic); backups need it.',
  };
  assert.deepEqual(readyModules, [
    { name: 'system', available: true },
    ...Object.entries(reasons).map(([name, reason]) => ({ name, available: false, reason })),
  ]);
  const m = testManager(pki);
  try {
    m.add({ id: 'bundled', address: '127.0.0.1', port });
    await m.waitForState('bundled', 'online');
    for (const [event, reason] of [
      ['list websites', reasons.websites],
      ['list ftp users', reasons.ftp],
      ['list databases', reasons.mysql],
      ['list firewall rules', reasons.firewall],
      ['list backups', reasons.backups],
    ] as const) {
      const r = await m.call('bundled', event, {});
      assert.ok(!r.ok, event);
      assert.deepEqual([r.error.code, r.error.message], ['unsupported', reason], event);
    }
  } finally {
    await m.close();
  }
});

test('the bundled agent refuses a client that is not the panel', async () => {
  const imposter = await pki.agent('imposter'); // a host certificate, not urn:ponio:panel
  const other = await issueCertificate({ ca: pki.ca, role: { kind: 'host', hostId: 'x' } });
  for (const cert of [imposter, other]) {
    const outcome = await tryAgentConnection(port, {
      cert: cert.certPem,
      key: cert.keyPem,
      ca: pki.ca.certPem,
    });
    assert.match(outcome, /^refused/);
  }
});

test('with MariaDB present, the bundled agent loads its mysql module and driver on demand and lists databases', async () => {
  requireProgram('mariadbd', 'mariadb-server');
  const files = await pki.agent('bundled-mysql');
  // Only MariaDB's programs visible: the mysql module (not loaded by the first agent, whose host
  // has no service) and the mysql2 driver inside the bundle must load and work.
  const cmd = withoutServices(
    process.execPath,
    [
      bundle,
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--cert',
      files.certFile,
      '--key',
      files.keyFile,
      '--ca',
      files.caFile,
      '--sandbox',
      path.join(dir, 'sandbox-mysql'),
    ],
    [
      'mariadbd',
      'mysqld',
      'mariadb-install-db',
      'mysql_install_db',
      'mariadb-admin',
      'mysqladmin',
      'setpriv',
    ],
  );
  const started = await spawnUntil(cmd.file, cmd.args, (l) => parseReady(l) !== null, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeoutMs: 120_000,
  });
  const m = testManager(pki);
  try {
    const ready = parseReady(started.line)!;
    assert.deepEqual(
      ready.modules.filter((x) => x.available).map((x) => x.name),
      ['system', 'mysql'],
    );
    m.add({ id: 'bundled-mysql', address: '127.0.0.1', port: ready.port });
    await m.waitForState('bundled-mysql', 'online');
    const created = await m.call('bundled-mysql', 'create database', { name: 'bundle_check' });
    assert.ok(created.ok, JSON.stringify(created));
    const r = await m.call('bundled-mysql', 'list databases', {});
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(
      r.data.databases.map((d) => [d.name, d.charset]),
      [['bundle_check', 'utf8mb4']],
    );
  } finally {
    await m.close();
    await stopChild(started.proc, 60_000);
  }
});
