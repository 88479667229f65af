// The panel serves the agent release on its HTTPS port for the one-line install
// (GET /agent/install.sh, GET /agent/ponio-agent.cjs): a real panel with a real `npm run build`
// agent bundle, fetched without a login; a panel without a bundle answers 404 and the Add-host
// output falls back to the two-step command.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { buildAgentBundle } from '../../bench/lib.ts';

let t: TestPanel;
let bundle: string;
let dist: string;
const dirs: string[] = [];

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** `sha256//…` of the certificate the panel presented on this connection. */
  peerPin: string;
}

/** A plain GET with no credentials; trusts the panel CA only to read its answer in the test. */
function get(url: string, headers: Record<string, string> = {}): Promise<Got> {
  // The path is sent as written (new URL() would resolve "%2e%2e" before sending).
  const u = /^(https:\/\/[^/]+)(\/.*)$/.exec(url);
  if (!u?.[1] || !u[2]) throw new Error(`bad url ${url}`);
  const { hostname, port } = new URL(u[1]);
  return new Promise((resolve, reject) => {
    const opts = { hostname, port, path: u[2], ca: t.panel.ctx.pki.ca.certPem, headers, agent: false };
    const req = https.get(opts, (res) => {
      const raw = (res.socket as TLSSocket).getPeerCertificate().raw;
      const spki = new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' });
      const peerPin = `sha256//${createHash('sha256').update(spki).digest('base64')}`;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), peerPin });
      });
    });
    req.on('error', reject);
  });
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const etagOf = (hex: string): string => `"sha256-${Buffer.from(hex, 'hex').toString('base64url')}"`;

before(async () => {
  bundle = await buildAgentBundle();
  dist = path.dirname(path.dirname(bundle));
  t = await startTestPanel({ agentDir: path.dirname(bundle) });
});

after(async () => {
  await t?.close();
  // (TestPanel.close() leaves its data dir behind.)
  for (const d of [dist, t?.dataDir, ...dirs]) if (d) rmSync(d, { recursive: true, force: true });
});

test('GET /agent/ponio-agent.cjs: the built bundle, no login, strong ETag, JavaScript type, 304 on match', async () => {
  const r = await get(`${t.url}/agent/ponio-agent.cjs`);
  assert.equal(r.status, 200, r.body.toString());
  const file = readFileSync(bundle);
  assert.ok(r.body.equals(file), 'the bundle, byte for byte');
  assert.match(String(r.headers['content-type']), /^text\/javascript; charset=utf-8$/);
  assert.equal(r.headers.etag, etagOf(sha256(file)));
  assert.equal(r.headers['x-content-sha256'], sha256(file));
  const again = await get(`${t.url}/agent/ponio-agent.cjs`, { 'if-none-match': String(r.headers.etag) });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
});

test('GET /agent/install.sh: the installer with the panel URL, HTTPS key pin, bundle SHA-256 and units filled in', async () => {
  const r = await get(`${t.url}/agent/install.sh`);
  assert.equal(r.status, 200, r.body.toString());
  assert.match(String(r.headers['content-type']), /^text\/x-shellscript; charset=utf-8$/);
  assert.equal(r.headers.etag, etagOf(sha256(r.body)));
  const script = r.body.toString('utf8');
  assert.ok(script.startsWith('#!/bin/sh\n'));
  assert.ok(script.includes(`\nPANEL_URL="${t.url}"\n`));
  // The pin is the key of the certificate this very connection was served with.
  assert.ok(script.includes(`\nPANEL_SPKI_PIN="${r.peerPin}"\n`), r.peerPin);
  assert.ok(script.includes(`\nPANEL_BUNDLE_SHA256="${sha256(readFileSync(bundle))}"\n`));
  assert.ok(script.includes(`cat >"$1/ponio-agent.service" <<'PONIO_UNIT_END'`));
  assert.ok(script.includes(readFileSync(path.join(path.dirname(bundle), 'ponio-agent.service'), 'utf8')));
  // One { } group: the shell reads it whole before running it (a cut-off download runs nothing).
  const lines = script.trimEnd().split('\n');
  assert.equal(
    lines.findIndex((l) => l === '{'),
    3,
  );
  assert.equal(lines.at(-1), '}');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-served-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'install.sh'), script);
  const syntax = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile('/bin/sh', ['-n', path.join(dir, 'install.sh')], (err, _o, stderr) => {
      resolve({ code: err ? 1 : 0, stderr });
    });
  });
  assert.equal(syntax.code, 0, syntax.stderr);
  const again = await get(`${t.url}/agent/install.sh`, { 'if-none-match': String(r.headers.etag) });
  assert.equal(again.status, 304);
});

test('no other file is served under /agent/', async () => {
  for (const p of [
    '/agent/install-agent.sh',
    '/agent/ponio-agent.service',
    '/agent/ponio-agent.cjs.map',
    '/agent/ponio-agent.cjs.LEGAL.txt',
    // the bundle's name while it was an ES module: not served any more
    '/agent/ponio-agent.mjs',
    '/agent/config.example.json',
    '/agent/',
    '/agent/..%2fponio-agent.cjs',
    '/agent/%2e%2e/panel.db',
  ]) {
    const r = await get(`${t.url}${p}`);
    assert.equal(r.status, 404, `${p}: ${r.status}`);
  }
  const post = await t.request('POST', '/agent/install.sh', { token: null, body: {} });
  assert.equal(post.status, 404);
});

test('Add host returns installCommand (pinned curl | sh) next to command; the pin is the served key', async () => {
  const add = await t.request<{
    data: { command: string; installCommand: string | null; token: string; caPin: string };
  }>('POST', '/api/v1/hosts', { body: { name: 'oneline1', address: '127.0.0.1', port: 7443 } });
  assert.equal(add.status, 201, add.text);
  const { installCommand, token, caPin, command } = add.body.data;
  assert.match(command, /^ponio-agent enroll --panel /);
  const peer = await get(`${t.url}/agent/install.sh`);
  assert.equal(
    installCommand,
    `curl -fsS --pinnedpubkey ${peer.peerPin} -k ${t.url}/agent/install.sh | sh -s -- --panel ${t.url} --token ${token} --ca-pin ${caPin}`,
  );
});

test('ponio-panel host add prints the one line (same pin as served) first, the enroll command second', async () => {
  const root = path.resolve(import.meta.dirname, '../..');
  const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [
        path.join(root, 'bin/ponio-panel.js'),
        'host',
        'add',
        'cli9',
        '--address',
        '127.0.0.1',
        '--public-url',
        t.url,
        '--data-dir',
        t.dataDir,
      ],
      { cwd: root, timeout: 30_000, env: { ...process.env, PONIO_PANEL_AGENT_DIR: path.dirname(bundle) } },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
    );
  });
  assert.equal(cli.code, 0, cli.stderr);
  const lines = cli.stdout.split('\n').map((l) => l.trim());
  const one = lines.findIndex((l) => l.startsWith('curl '));
  const two = lines.findIndex((l) => l.startsWith('ponio-agent enroll '));
  assert.ok(one > 0 && two > one, cli.stdout);
  const served = await get(`${t.url}/agent/install.sh`);
  assert.ok(
    lines[one]?.startsWith(
      `curl -fsS --pinnedpubkey ${served.peerPin} -k ${t.url}/agent/install.sh | sh -s -- `,
    ),
  );
});

test('the Add host wizard shows the one line with a copy button, the enroll command under it', async () => {
  const web = await t.signedIn('admin1', 'admin');
  const r = await web.submit('/hosts/new', '/hosts/new', {
    name: 'wizard1',
    address: '192.0.2.9',
    port: '7443',
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers['cache-control'], 'no-store');
  const unescape = (s: string): string =>
    s
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&')
      .replace(/&quot;/g, '"');
  const line = unescape(/id="install-command">([^<]+)</.exec(r.text)?.[1] ?? '');
  const token = /--token (\S+)/.exec(line)?.[1] ?? '';
  assert.match(
    line,
    /^curl -fsS --pinnedpubkey sha256\/\/\S+ -k https:\/\/\S+\/agent\/install\.sh \| sh -s -- --panel /,
  );
  assert.match(r.text, /data-copy-target="#install-command"/);
  const cmd = unescape(/id="enroll-command">([^<]+)</.exec(r.text)?.[1] ?? '');
  assert.ok(cmd.startsWith('ponio-agent enroll --panel ') && cmd.includes(`--token ${token} `), cmd);
  assert.match(r.text, /data-copy-target="#enroll-command"/);
});

test('without an agent release: 404 with a sentence, and Add host gives only the two-step command', async () => {
  const empty = mkdtempSync(path.join(os.tmpdir(), 'ponio-noagent-'));
  dirs.push(empty);
  const p = await startTestPanel({ agentDir: empty });
  dirs.push(p.dataDir);
  try {
    for (const f of ['install.sh', 'ponio-agent.cjs']) {
      const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        https
          .get(`${p.url}/agent/${f}`, { ca: p.panel.ctx.pki.ca.certPem }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          })
          .on('error', reject);
      });
      assert.equal(r.status, 404);
      assert.match(r.text, /no agent release to serve \(build it with `npm run build`/);
      assert.ok(!r.text.includes(empty), 'no file system path in a public answer');
    }
    const add = await p.request<{ data: { command: string; installCommand: string | null } }>(
      'POST',
      '/api/v1/hosts',
      { body: { name: 'twostep', address: '127.0.0.1' } },
    );
    assert.equal(add.status, 201, add.text);
    assert.equal(add.body.data.installCommand, null);
    assert.match(add.body.data.command, /^ponio-agent enroll --panel /);
  } finally {
    await p.close();
  }
});

test('openapi.json documents installCommand next to command for POST /hosts and POST /hosts/{hostId}/token', async () => {
  const r = await t.request<any>('GET', '/api/v1/openapi.json', { token: null });
  assert.equal(r.status, 200);
  for (const p of ['/hosts', '/hosts/{hostId}/token']) {
    const data = r.body.paths[p].post.responses['201'].content['application/json'].schema.properties.data;
    assert.ok(data.properties.command, p);
    assert.match(JSON.stringify(data.properties.installCommand), /pinnedpubkey/, p);
  }
});
