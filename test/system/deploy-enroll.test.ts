// From nothing to a running enrolled agent with the shipped pieces: `npm run build`'s bundle and
// install-agent.sh with the enrollment flags the panel prints, against a real panel; then the
// installed bundle serves with the installed config and the panel pings it. (Under --root the
// agent's files live in ROOT/etc/ponio-agent, i.e. the sandbox layout; systemd is not involved.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { freePort } from '../helpers/enroll.ts';
import { buildAgentBundle, parseReady, spawnUntil, stopChild } from '../../bench/lib.ts';

let t: TestPanel;
let dist: string;
let root: string;
let agent: ChildProcess | null = null;

function sh(
  script: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('/bin/sh', [script, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

before(async () => {
  t = await startTestPanel();
  dist = path.dirname(path.dirname(await buildAgentBundle()));
  root = mkdtempSync(path.join(os.tmpdir(), 'ponio-deploy-enroll-'));
  chmodSync(root, 0o755);
});

after(async () => {
  if (agent) await stopChild(agent);
  await t?.close();
  for (const d of [root, dist]) if (d) rmSync(d, { recursive: true, force: true });
});

test('install-agent.sh --panel/--token/--ca-pin enrolls; the installed agent serves and answers the panel', async () => {
  const port = await freePort();
  const add = await t.request<{ data: { command: string; token: string; caPin: string } }>(
    'POST',
    '/api/v1/hosts',
    { body: { name: 'deployed1', address: '127.0.0.1', port } },
  );
  assert.equal(add.status, 201, add.text);
  const { token, caPin } = add.body.data;
  assert.match(
    add.body.data.command,
    /^ponio-agent enroll --panel https:\/\/\S+ --token \S+ --ca-pin sha256:/,
  );

  // An admin's config prepared before installing is kept (and merged by enroll): this one turns
  // the service modules off, so the test starts no Apache / MariaDB.
  mkdirSync(path.join(root, 'etc/ponio-agent'), { recursive: true, mode: 0o700 });
  writeFileSync(
    path.join(root, 'etc/ponio-agent/config.json'),
    JSON.stringify({ modules: { websites: false, ftp: false, mysql: false, firewall: false } }),
    { mode: 0o600 },
  );
  const args = [
    '--root',
    root,
    '--panel',
    t.url,
    '--token',
    token,
    '--ca-pin',
    caPin,
    '--listen',
    `127.0.0.1:${port}`,
  ];
  const install = await sh(path.join(dist, 'agent/install-agent.sh'), args);
  assert.equal(install.code, 0, install.stderr + install.stdout);
  assert.match(install.stdout, /Enrolled as host deployed1/);

  const etc = path.join(root, 'etc/ponio-agent');
  const mode = (f: string): string => (statSync(path.join(etc, f)).mode & 0o777).toString(8);
  assert.equal(mode('.'), '700');
  assert.equal(mode('agent.key'), '600');
  assert.equal(mode('config.json'), '600');
  const cfg = JSON.parse(readFileSync(path.join(etc, 'config.json'), 'utf8'));
  assert.equal(cfg.listen, `127.0.0.1:${port}`);
  assert.equal(cfg.modules.mysql, false, 'the prepared config was merged, not replaced');

  // Re-running the same line is safe: already enrolled, nothing changes.
  const keyBefore = readFileSync(path.join(etc, 'agent.key'));
  const again = await sh(path.join(root, 'opt/ponio-agent/install-agent.sh'), [
    ...args,
    '--bundle',
    path.join(dist, 'agent/ponio-agent.cjs'),
  ]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Already enrolled as host deployed1/);
  assert.ok(readFileSync(path.join(etc, 'agent.key')).equals(keyBefore));

  // What the unit runs: the installed bundle with the installed config.
  const started = await spawnUntil(
    process.execPath,
    [path.join(root, 'opt/ponio-agent/ponio-agent.cjs'), 'serve', '--config', path.join(etc, 'config.json')],
    (l) => parseReady(l) !== null,
    { cwd: root },
  );
  agent = started.proc;
  await t.panel.ctx.hosts.manager.waitForState('deployed1', 'online', 20_000);
  const ping = await t.request<{ data: { pong: boolean } }>('POST', '/api/v1/hosts/deployed1/ping');
  assert.equal(ping.status, 200, ping.text);
  assert.equal(ping.body.data.pong, true);

  await stopChild(agent);
  agent = null;
  const un = await sh(path.join(root, 'opt/ponio-agent/install-agent.sh'), ['--root', root, '--uninstall']);
  assert.equal(un.code, 0, un.stderr);
  // Everything the installer put there is gone, certificates and state included; what is left
  // is what the sandbox-mode agent itself created for its services (web root, run and log dirs).
  const left = readdirSync(root, { recursive: true }).map(String).sort();
  assert.deepEqual(
    left.filter((p) => !/^(var|var\/www(\/.*)?|run(\/.*)?|log(\/.*)?)$/.test(p)),
    [],
  );
});
