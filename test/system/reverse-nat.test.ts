// Reverse mode for real: the agent runs behind NAT in network namespaces this test creates
// (test/helpers/nat.ts), the panel runs as a real process in the "wan" namespace. The panel
// cannot connect to the agent; the agent dials out and everything goes through the panel's
// REST API (curl inside the wan namespace). Nothing outside these namespaces is touched.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/agent-process.ts';
import { createNatLab, type NatLab } from '../helpers/nat.ts';
import { spawnAgentInNs, nsRun, type NsAgent } from '../helpers/netns.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { tempDir } from '../helpers/tmp.ts';

const PANEL_PORT = 8443; // the namespaces are private: fixed ports are fine
const LISTEN_PORT = 7444;
let lab: NatLab;
let data: string;
let sandbox: string;
interface PanelProcess {
  proc: ChildProcess;
  output: () => string;
  /** Resolves when the process has exited (whenever that was). */
  exited: Promise<void>;
}
let panel: PanelProcess | null = null;
let agent: NsAgent | null = null;
let token = '';
const HOST = 'nat1';

/** `ponio-panel serve` inside the wan namespace; resolves once it prints its URL. */
function startPanelProcess(): Promise<PanelProcess> {
  const proc = spawn(
    'ip',
    [
      'netns',
      'exec',
      lab.wan,
      process.execPath,
      path.join(ROOT, 'bin/ponio-panel.js'),
      'serve',
      '--host',
      lab.panelIp,
      '--port',
      String(PANEL_PORT),
      '--agent-listen',
      `0.0.0.0:${LISTEN_PORT}`,
      '--public-url',
      `https://${lab.panelIp}:${PANEL_PORT}`,
      '--data-dir',
      data,
      '--log-level',
      'info',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`panel not ready:\n${out}`));
    }, 90_000); // a shared, loaded machine can take long to start a process
    const early = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`panel exited with ${code}:\n${out}`));
    };
    proc.once('exit', early);
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('PonIO panel: ')) {
        clearTimeout(timer);
        proc.off('exit', early);
        resolve({ proc, output: () => out, exited });
      }
    });
  });
}

async function stopPanel(): Promise<void> {
  const p = panel;
  panel = null;
  if (!p) return;
  p.proc.kill('SIGTERM');
  const t = setTimeout(() => p.proc.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(t);
}

function cli(bin: 'ponio-panel' | 'ponio-agent', ns: string | null, args: string[]): Promise<string> {
  const cmd = [process.execPath, path.join(ROOT, `bin/${bin}.js`), ...args];
  const [file, argv] = ns ? ['ip', ['netns', 'exec', ns, ...cmd]] : [cmd[0] ?? '', cmd.slice(1)];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(' ')} failed: ${stderr}${stdout}`));
      else resolve(stdout);
    });
  });
}

/** A REST call to the panel, made with curl inside the wan namespace. */
function api<T = any>(
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<{ status: number; body: T; text: string }> {
  const args = [
    'netns',
    'exec',
    lab.wan,
    'curl',
    '-sS',
    '--max-time',
    '60',
    '--cacert',
    path.join(data, 'pki/ca.crt'),
    '-X',
    method,
    '-H',
    `authorization: Bearer ${token}`,
    '-w',
    '\n%{http_code}',
  ];
  if (body !== undefined)
    args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  args.push(`https://${lab.panelIp}:${PANEL_PORT}${urlPath}`);
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 70_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl ${method} ${urlPath}: ${stderr}`));
      const i = stdout.lastIndexOf('\n');
      const text = stdout.slice(0, i);
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      resolve({ status: Number(stdout.slice(i + 1)), body: parsed as T, text });
    });
  });
}

async function hostState(): Promise<string> {
  const r = await api<{ data: { connection: { state: string } | null } }>('GET', `/api/v1/hosts/${HOST}`);
  return r.body.data?.connection?.state ?? `http ${r.status}`;
}

/** Polls until the host is in `state`; returns the seconds it took. */
async function waitState(state: string, limitS: number): Promise<number> {
  const t0 = Date.now();
  let now = '';
  while (Date.now() - t0 < limitS * 1000) {
    now = await hostState();
    if (now === state) return (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`host not ${state} within ${limitS} s (now ${now})`);
}

/** Whether a TCP connection from `ns` to ip:port succeeds within 2 s. */
function canConnect(ns: string, ip: string, port: number): boolean {
  const script = `const s=require('net').connect(${port},'${ip}');s.setTimeout(2000);s.on('connect',()=>{console.log('yes');process.exit(0)});s.on('timeout',()=>{console.log('no');process.exit(0)});s.on('error',()=>{console.log('no');process.exit(0)})`;
  return nsRun(ns, process.execPath, ['-e', script]).trim() === 'yes';
}

const startAgent = async (): Promise<NsAgent> =>
  spawnAgentInNs(lab.lan, ['--config', path.join(sandbox, 'etc/ponio-agent/config.json')], 60_000);

before(async () => {
  requireRoot('the reverse-mode NAT test');
  requireProgram('ip', 'iproute2');
  requireProgram('iptables', 'iptables');
  requireProgram('curl', 'curl');
  lab = createNatLab('rnat');
  data = tempDir('ponio-rnat-panel-');
  sandbox = tempDir('ponio-rnat-host-');
  execFileSync('chmod', ['0755', sandbox]);
  panel = await startPanelProcess();
  token =
    (await cli('ponio-panel', null, ['token', 'create', 'nat-test', '--role', 'admin', '--data-dir', data]))
      .trim()
      .split('\n')
      .at(-1) ?? '';
  const added = JSON.parse(
    await cli('ponio-panel', null, [
      'host',
      'add',
      HOST,
      '--reverse',
      '--json',
      '--data-dir',
      data,
      '--public-url',
      `https://${lab.panelIp}:${PANEL_PORT}`,
    ]),
  ) as { command: string; host: { mode: string } };
  assert.equal(added.host.mode, 'reverse');
  // The command the panel printed, run on the host (in the lan namespace, sandbox mode).
  const args = added.command.split(' ').slice(1);
  await cli('ponio-agent', lab.lan, [...args, '--sandbox', sandbox]);
  const cfgFile = path.join(sandbox, 'etc/ponio-agent/config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(cfg.connect, [`wss://${lab.panelIp}:${LISTEN_PORT}`], 'enrollment set up the dial-out');
  assert.equal(cfg.listen, undefined, 'no listening address in reverse mode');
  // The firewall module manages the agent's own namespace: the lock-out guard is real.
  cfg.modules = { firewall: { netns: lab.lan, confirmTimeoutSeconds: 30 } };
  writeFileSync(cfgFile, JSON.stringify(cfg));
  agent = await startAgent();
});

after(async () => {
  await agent?.stop();
  await stopPanel();
  lab?.destroy();
  for (const d of [data, sandbox]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('reverse mode behind NAT', () => {
  test('the panel cannot connect to the agent; the agent dials out through MASQUERADE', async () => {
    await waitState('online', 30);
    // Even a port that listens in the agent's namespace is out of the panel's reach.
    const listener = spawn(
      'ip',
      [
        'netns',
        'exec',
        lab.lan,
        process.execPath,
        '-e',
        "require('net').createServer((s)=>s.end('hi')).listen(7443,'0.0.0.0',()=>console.log('up'))",
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    await new Promise<void>((r) => listener.stdout.once('data', () => r()));
    try {
      assert.equal(canConnect(lab.lan, '127.0.0.1', 7443), true, 'the test listener is up');
      assert.equal(canConnect(lab.wan, lab.agentIp, 7443), false, 'the panel side cannot connect in');
      assert.equal(canConnect(lab.lan, lab.panelIp, PANEL_PORT), true, 'the host can connect out');
    } finally {
      listener.kill('SIGKILL');
    }
    // The panel saw the translated address.
    assert.match(
      panel?.output() ?? '',
      new RegExp(`"remote":"${lab.natIp.replace(/\./g, '\\.')}:\\d+".*"msg":"agent connected"`),
    );
    // The agent itself listens on no address but loopback (its sandbox services).
    const listening = nsRun(lab.lan, 'ss', ['-Hltn'])
      .split('\n')
      .filter((l) => l.trim() !== '');
    const open = listening
      .map((l) => l.trim().split(/\s+/)[3] ?? '')
      .filter((a) => !/^(127\.0\.0\.1|\[::1\]):/.test(a));
    assert.deepEqual(open, [], `only loopback listeners in the agent's namespace: ${listening.join(' | ')}`);
  });

  test('websites, FTP, MySQL and firewall calls succeed through the panel REST API', async () => {
    const base = `/api/v1/hosts/${HOST}`;
    const site = await api('POST', `${base}/websites`, { domain: 'nat.test' });
    assert.equal(site.status, 201, site.text);
    const sites = await api<{ data: { websites: { domain: string }[] } }>('GET', `${base}/websites`);
    assert.ok(
      sites.body.data.websites.some((w) => w.domain === 'nat.test'),
      sites.text,
    );
    const ftp = await api('POST', `${base}/ftp-users`, {
      username: 'natuser',
      password: 'nat password 1',
      home: path.join(sandbox, 'srv/ftp/natuser'),
    });
    assert.equal(ftp.status, 201, ftp.text);
    const db = await api('POST', `${base}/databases`, { name: 'natdb', collation: 'utf8mb4_bin' });
    assert.equal(db.status, 201, db.text);
    const dbs = await api<{ data: { databases: { name: string }[] } }>('GET', `${base}/databases`);
    assert.ok(
      dbs.body.data.databases.some((d) => d.name === 'natdb'),
      dbs.text,
    );
    const rule = await api('POST', `${base}/firewall/rules`, {
      action: 'deny',
      protocol: 'tcp',
      port: '8080',
      comment: 'nat',
    });
    assert.ok(rule.status === 200 || rule.status === 201, rule.text);
    assert.match(nsRun(lab.lan, 'iptables-save', []), /--dport 8080 .*-j DROP/);
  });

  test("the lock-out guard refuses a rule that cuts the agent's own connection to the panel", async () => {
    const base = `/api/v1/hosts/${HOST}/firewall`;
    const cut = await api<{ error: { code: string; message: string } }>('POST', `${base}/rules`, {
      action: 'deny',
      protocol: 'any',
      source: lab.panelIp,
      comment: 'cut',
    });
    assert.equal(cut.status, 409, cut.text);
    assert.match(cut.body.error.message, /cut the agent’s own connection to the panel/);
    assert.doesNotMatch(
      nsRun(lab.lan, 'iptables-save', []),
      new RegExp(`-s ${lab.panelIp.replace(/\./g, '\\.')}/32`),
    );
    assert.equal(await hostState(), 'online');
  });

  test('a half-open link is noticed within 30 s on both ends, then the agent comes back', async () => {
    const before = (agent?.output().match(/link to the panel lost/g) ?? []).length;
    nsRun(lab.nat, 'iptables', ['-I', 'FORWARD', '1', '-j', 'DROP']);
    try {
      const s = await waitState('offline', 30);
      assert.ok(s <= 30, `panel noticed after ${s} s`);
      const t0 = Date.now();
      while ((agent?.output().match(/link to the panel lost/g) ?? []).length === before) {
        assert.ok(Date.now() - t0 < 30_000, 'the agent noticed the dead link within 30 s');
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      nsRun(lab.nat, 'iptables', ['-D', 'FORWARD', '1']);
    }
    await waitState('online', 45);
  });

  test('panel restart: the host is online again within 10 s', async () => {
    const t0 = Date.now();
    await stopPanel();
    const stopped = (Date.now() - t0) / 1000;
    panel = await startPanelProcess();
    const s = await waitState('online', 10);
    assert.ok(s <= 10, `online ${s} s after the restart (the stop took ${stopped} s)`);
    const r = await api<{ data: { pong: boolean } }>('POST', `/api/v1/hosts/${HOST}/ping`);
    assert.equal(r.status, 200, r.text);
  });

  test('kill the agent: the panel shows it offline at once (well within 30 s)', async () => {
    await agent?.kill();
    agent = null;
    const s = await waitState('offline', 30);
    assert.ok(s < 30, `offline after ${s} s`);
    agent = await startAgent();
    await waitState('online', 30);
  });

  test("a removed (revoked) host's reconnection is refused at the TLS layer", async () => {
    const before = (panel?.output().match(/"msg":"agent connected"/g) ?? []).length;
    const del = await api('DELETE', `/api/v1/hosts/${HOST}`);
    assert.equal(del.status, 200, del.text);
    const t0 = Date.now();
    // The listener's CRL lists the certificate: OpenSSL's own verification fails the handshake.
    while (!/"reason":"CERT_REVOKED","msg":"agent TLS handshake refused"/.test(panel?.output() ?? '')) {
      assert.ok(
        Date.now() - t0 < 30_000,
        `the panel refused the reconnection in the TLS handshake:\n${panel?.output().slice(-2000)}`,
      );
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal((panel?.output().match(/"msg":"agent connected"/g) ?? []).length, before, 'no new link');
    assert.match(agent?.output() ?? '', /could not connect to the panel/);
  });
});
