// The one-line install: the exact `curl … | sh -s -- …` line a real panel returns from Add host,
// run through bash as the admin pastes it (plus --root/--listen so it installs into a temporary
// root), ends with an installed, enrolled agent that answers the panel's ping. A wrong pin makes
// curl refuse before anything is sent or run; a bundle whose SHA-256 differs from the announced
// one, or a cut-off script, installs nothing. (This machine's curl checks --pinnedpubkey with -k.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { freePort } from '../helpers/enroll.ts';
import { requireProgram } from '../helpers/programs.ts';
import { buildAgentBundle, parseReady, spawnUntil, stopChild } from '../../bench/lib.ts';

let t: TestPanel;
let dist: string;
let agent: ChildProcess | null = null;
const roots: string[] = [];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command line through bash, as pasted into a root shell (only here, in the test). */
function bash(line: string, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile('/bin/bash', ['-c', line], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

function newRoot(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'ponio-oneline-'));
  chmodSync(root, 0o755);
  roots.push(root);
  // An admin's config prepared before installing (kept and merged by enroll): service modules
  // off, so the test starts no Apache / MariaDB.
  mkdirSync(path.join(root, 'etc/ponio-agent'), { recursive: true, mode: 0o700 });
  writeFileSync(
    path.join(root, 'etc/ponio-agent/config.json'),
    JSON.stringify({ modules: { websites: false, ftp: false, mysql: false, firewall: false } }),
    { mode: 0o600 },
  );
  return root;
}

const installed = (root: string): boolean => existsSync(path.join(root, 'opt'));

async function addHost(name: string, port: number): Promise<{ installCommand: string; command: string }> {
  const add = await t.request<{ data: { installCommand: string | null; command: string } }>(
    'POST',
    '/api/v1/hosts',
    { body: { name, address: '127.0.0.1', port } },
  );
  assert.equal(add.status, 201, add.text);
  const { installCommand, command } = add.body.data;
  assert.ok(installCommand, 'the panel serves an agent release, so it gives the one line');
  return { installCommand, command };
}

before(async () => {
  requireProgram('curl', 'curl');
  requireProgram('sha256sum', 'coreutils');
  const bundle = await buildAgentBundle();
  dist = path.dirname(path.dirname(bundle));
  t = await startTestPanel({ agentDir: path.dirname(bundle) });
});

after(async () => {
  if (agent) await stopChild(agent);
  await t?.close();
  // (TestPanel.close() leaves its data dir behind.)
  for (const d of [dist, t?.dataDir, ...roots]) if (d) rmSync(d, { recursive: true, force: true });
});

test('the one line from Add host installs and enrolls; the installed agent answers the panel', async () => {
  const port = await freePort();
  const { installCommand } = await addHost('oneline1', port);
  assert.match(
    installCommand,
    /^curl -fsS --pinnedpubkey sha256\/\/[A-Za-z0-9+/]{43}= -k https:\/\/\S+\/agent\/install\.sh \| sh -s -- --panel https:\/\/\S+ --token \S+ --ca-pin sha256:[0-9a-f]+$/,
  );
  const root = newRoot();
  const run = await bash(`${installCommand} --root ${root} --listen 127.0.0.1:${port}`);
  assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.match(run.stdout, /Downloading the agent from https:/);
  assert.match(run.stdout, /Enrolled as host oneline1/);

  const opt = path.join(root, 'opt/ponio-agent');
  const etc = path.join(root, 'etc/ponio-agent');
  const mode = (f: string): string => (statSync(f).mode & 0o777).toString(8);
  assert.ok(
    readFileSync(path.join(opt, 'ponio-agent.cjs')).equals(
      readFileSync(path.join(dist, 'agent/ponio-agent.cjs')),
    ),
  );
  assert.equal(mode(path.join(opt, 'ponio-agent.cjs')), '755');
  assert.equal(
    readFileSync(path.join(root, 'etc/systemd/system/ponio-agent.service'), 'utf8'),
    readFileSync(path.join(dist, 'agent/ponio-agent.service'), 'utf8'),
  );
  // The kept installer copy is the panel's (for --uninstall and upgrades from the panel).
  assert.match(
    readFileSync(path.join(opt, 'install-agent.sh'), 'utf8'),
    /^PANEL_BUNDLE_SHA256="[0-9a-f]{64}"$/m,
  );
  assert.equal(mode(etc), '700');
  assert.equal(mode(path.join(etc, 'agent.key')), '600');
  const cfg = JSON.parse(readFileSync(path.join(etc, 'config.json'), 'utf8'));
  assert.equal(cfg.listen, `127.0.0.1:${port}`);
  assert.equal(cfg.modules.mysql, false);

  const started = await spawnUntil(
    process.execPath,
    [path.join(opt, 'ponio-agent.cjs'), 'serve', '--config', path.join(etc, 'config.json')],
    (l) => parseReady(l) !== null,
    { cwd: root },
  );
  agent = started.proc;
  await t.panel.ctx.hosts.manager.waitForState('oneline1', 'online', 20_000);
  const ping = await t.request<{ data: { pong: boolean } }>('POST', '/api/v1/hosts/oneline1/ping');
  assert.equal(ping.status, 200, ping.text);
  assert.equal(ping.body.data.pong, true);
  await stopChild(agent);
  agent = null;

  // The kept copy uninstalls without the panel.
  const un = await bash(`sh ${path.join(opt, 'install-agent.sh')} --root ${root} --uninstall`);
  assert.equal(un.code, 0, un.stderr);
  assert.equal(installed(root), false);
});

test('a wrong pin: curl refuses the panel (even with -k), nothing runs, nothing is installed, the token is unspent', async () => {
  const port = await freePort();
  const { installCommand } = await addHost('oneline2', port);
  // A man in the middle's key: any other key's pin (here the panel CA's own key).
  const caKey = new X509Certificate(t.panel.ctx.pki.ca.certPem).publicKey.export({
    type: 'spki',
    format: 'der',
  });
  const other = createHash('sha256').update(caKey).digest('base64');
  const wrong = installCommand.replace(/--pinnedpubkey \S+/, `--pinnedpubkey sha256//${other}`);
  assert.notEqual(wrong, installCommand);
  const root = newRoot();
  // pipefail only to read curl's own status; the admin's line is the same pipe.
  const run = await bash(`set -o pipefail; ${wrong} --root ${root} --listen 127.0.0.1:${port}`);
  assert.equal(run.code, 90, run.stderr); // CURLE_SSL_PINNEDPUBKEYNOTMATCH
  assert.match(run.stderr, /pinned public key/i);
  assert.equal(installed(root), false);
  assert.equal(t.panel.ctx.hosts.repo.get('oneline2')?.status, 'pending');
  // The same line without -k's pin check would have fetched it: the pin is what refused it.
  const good = await bash(
    `curl -fsS --pinnedpubkey ${/--pinnedpubkey (\S+)/.exec(installCommand)?.[1] ?? ''} -k -o /dev/null ${t.url}/agent/install.sh`,
  );
  assert.equal(good.code, 0, good.stderr);
});

test('the installer refuses a bundle whose SHA-256 is not the announced one, and a cut-off script runs nothing', async () => {
  const port = await freePort();
  const { installCommand } = await addHost('oneline3', port);
  const pin = /--pinnedpubkey (\S+)/.exec(installCommand)?.[1] ?? '';
  const fetched = await bash(`curl -fsS --pinnedpubkey ${pin} -k ${t.url}/agent/install.sh`);
  assert.equal(fetched.code, 0, fetched.stderr);
  const script = fetched.stdout;
  const args = installCommand.replace(/^.*\| sh -s -- /, '');

  const root = newRoot();
  const tampered = script.replace(
    /^PANEL_BUNDLE_SHA256="[0-9a-f]{64}"$/m,
    `PANEL_BUNDLE_SHA256="${'0'.repeat(64)}"`,
  );
  assert.notEqual(tampered, script);
  const refused = await bash(`sh -s -- ${args} --root ${root} --listen 127.0.0.1:${port}`, tampered);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /not 0{64} as announced by the panel; nothing was installed/);
  assert.equal(installed(root), false);

  const cut = script.slice(0, Math.floor(script.length * 0.6));
  const partial = await bash(`sh -s -- ${args} --root ${root} --listen 127.0.0.1:${port}`, cut);
  assert.notEqual(partial.code, 0);
  assert.match(partial.stderr, /syntax error/i, partial.stderr);
  assert.equal(partial.stdout, '', 'nothing of a cut-off script ran');
  assert.equal(installed(root), false);
  assert.equal(t.panel.ctx.hosts.repo.get('oneline3')?.status, 'pending');
});

test('the built panel (npm run build) finds the agent release next to itself and serves it', async () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'ponio-oneline-build-'));
  roots.push(out);
  const built = await new Promise<Run>((resolve) => {
    execFile(
      process.execPath,
      [path.join(import.meta.dirname, '../../scripts/build.mjs'), '--out', out],
      { timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
    );
  });
  assert.equal(built.code, 0, built.stderr);
  const panelDir = path.join(out, 'panel');
  const data = path.join(out, 'data');
  const port = await freePort();
  const panelCli = path.join(panelDir, 'ponio-panel.mjs');
  const started = await spawnUntil(
    process.execPath,
    [
      panelCli,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--data-dir',
      data,
      '--agent-listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ],
    (l) => l.startsWith('PonIO panel: '),
    { cwd: out },
  );
  try {
    const url = `https://127.0.0.1:${port}`;
    const ca = path.join(data, 'pki/ca.crt');
    const bundle = await bash(`curl -fsS --cacert ${ca} -o ${out}/got.cjs -D - ${url}/agent/ponio-agent.cjs`);
    assert.equal(bundle.code, 0, bundle.stderr);
    assert.match(bundle.stdout, /^etag: "sha256-/im);
    assert.ok(
      readFileSync(path.join(out, 'got.cjs')).equals(
        readFileSync(path.join(panelDir, 'agent/ponio-agent.cjs')),
      ),
    );
    const script = await bash(`curl -fsS --cacert ${ca} ${url}/agent/install.sh`);
    assert.equal(script.code, 0, script.stderr);
    assert.match(script.stdout, /^PANEL_BUNDLE_SHA256="[0-9a-f]{64}"$/m);
    // The built CLI gives the one line too (same layout lookup), with the served key's pin.
    const add = await new Promise<Run>((resolve) => {
      execFile(
        process.execPath,
        [
          panelCli,
          'host',
          'add',
          'built1',
          '--address',
          '127.0.0.1',
          '--data-dir',
          data,
          '--public-url',
          url,
        ],
        { cwd: out, timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      );
    });
    assert.equal(add.code, 0, add.stderr);
    const line =
      add.stdout
        .split('\n')
        .find((l) => l.trim().startsWith('curl '))
        ?.trim() ?? '';
    const pin = /--pinnedpubkey (\S+)/.exec(line)?.[1] ?? '';
    const pinned = await bash(`curl -fsS --pinnedpubkey '${pin}' -k -o /dev/null ${url}/agent/install.sh`);
    assert.equal(pinned.code, 0, pinned.stderr + line);
  } finally {
    await stopChild(started.proc);
  }
});
