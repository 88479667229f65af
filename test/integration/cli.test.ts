import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, readFileSync, readdirSync, chmodSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../server/db/database.ts';
import { UsersRepo } from '../../server/auth/users.ts';
import { verifyPassword } from '../../server/auth/passwords.ts';

// `ponio-panel` as a real process: offline account/token commands, and `serve --dev-sandbox`
// (npm start) with its first-run admin and a real sandbox agent child, stopped by SIGINT.
const BIN = path.resolve('bin/ponio-panel.js');
const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const tmp = (): string => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'ponio-cli-'));
  chmodSync(d, 0o755);
  dirs.push(d);
  return d;
};

function cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('user add / passwd / list and token create / revoke work offline on the data dir', async () => {
  const data = path.join(tmp(), 'data');
  const add = cli(['user', 'add', 'ops', '--role', 'operator', '--data-dir', data]);
  assert.equal(add.status, 0, add.stderr);
  const pw = /password: (\S+)/.exec(add.stdout)?.[1];
  assert.ok(pw);
  const bad = cli(['user', 'add', '../x', '--data-dir', data]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /username must be/);
  const set = cli(
    ['user', 'passwd', 'ops', '--password-stdin', '--data-dir', data],
    'a brand new password\n',
  );
  assert.equal(set.status, 0, set.stderr);
  assert.ok(!set.stdout.includes('a brand new password'));
  const short = cli(['user', 'passwd', 'ops', '--password-stdin', '--data-dir', data], 'short\n');
  assert.notEqual(short.status, 0);
  const list = cli(['user', 'list', '--json', '--data-dir', data]);
  const users = JSON.parse(list.stdout) as { username: string; role: string }[];
  assert.deepEqual(
    users.map((u) => [u.username, u.role]),
    [['ops', 'operator']],
  );
  const db = openDatabase(path.join(data, 'panel.db'));
  try {
    const u = new UsersRepo(db).getByName('ops')!;
    assert.equal(await verifyPassword('a brand new password', u.password_hash), true);
  } finally {
    db.close();
  }
  const tok = cli([
    'token',
    'create',
    'ci job',
    '--role',
    'viewer',
    '--expires-days',
    '7',
    '--data-dir',
    data,
  ]);
  assert.equal(tok.status, 0, tok.stderr);
  assert.match(tok.stdout, /^pio_[A-Za-z0-9_-]+$/m);
  const id = /token (\d+)/.exec(tok.stdout)?.[1];
  assert.equal(cli(['token', 'revoke', id!, '--data-dir', data]).status, 0);
  assert.equal(cli(['token', 'revoke', id!, '--data-dir', data]).status, 1, 'already revoked');
  assert.equal(cli(['token', 'revoke', '1; DROP TABLE', '--data-dir', data]).status, 2);
});

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('serve --dev-sandbox: first-run admin, sandbox host online, Ctrl-C stops panel and agent; a second run reuses everything', async () => {
  const data = path.join(tmp(), 'data');
  // `serve --dev-sandbox` creates the firewall namespace when missing; remove it again if we caused it.
  if (!existsSync('/run/netns/ponio-sandbox'))
    after(() => {
      spawnSync('ip', ['netns', 'del', 'ponio-sandbox']);
    });
  const run = async (extra: string[] = []): Promise<{ out: string; stopCode: number | null }> => {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'serve',
        '--dev-sandbox',
        '--port',
        '0',
        '--agent-listen',
        '127.0.0.1:0',
        '--data-dir',
        data,
        ...extra,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 120_000;
    while (!/Sandbox host: (online|not online)/.test(out) && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 250));
    assert.match(out, /Sandbox host: online/, out);
    const url = /PonIO panel: (https:\/\/\S+)/.exec(out)?.[1];
    assert.ok(url);
    const ca = readFileSync(path.join(data, 'pki/ca.crt'), 'utf8');
    assert.equal((await get(`${url}/login`, ca)).status, 200);
    const agentPid = Number(
      readFileSync(path.join(data, 'sandbox/agent.log'), 'utf8')
        .match(/"pid":(\d+)/g)
        ?.pop()
        ?.slice(6),
    );
    // Every domain is live in the sandbox, the firewall in the namespace `npm start` creates.
    const ready = readFileSync(path.join(data, 'sandbox/agent.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"agent ready"'))
      .pop();
    const modules = (JSON.parse(ready ?? '{}') as { modules?: { name: string; available: boolean }[] })
      .modules;
    assert.deepEqual(
      modules?.filter((m) => !m.available).map((m) => m.name),
      [],
      `every sandbox module available: ${ready}`,
    );
    assert.ok(existsSync('/run/netns/ponio-sandbox'), 'the sandbox firewall namespace exists');
    // The sandbox's private Apache, proftpd and MariaDB run from its dir; Ctrl-C must stop them too.
    // proftpd renames its process ("proftpd: (accepting connections)"): its pid file names it.
    const sandboxDir = path.join(data, 'sandbox');
    const proftpdPid = readFileSync(path.join(sandboxDir, 'run/proftpd.pid'), 'utf8').trim();
    const leftovers = (): string[] =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .flatMap((p) => {
          try {
            const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
            return cmd.includes(sandboxDir) || p === proftpdPid ? [`${p}: ${cmd}`] : [];
          } catch {
            return [];
          }
        });
    const running = leftovers().join('\n');
    for (const service of ['apache2', 'proftpd', 'mariadbd'])
      assert.ok(running.includes(service), `${service} runs from the sandbox:\n${running}`);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    const stopCode = await exited;
    let agentAlive = true;
    for (let i = 0; i < 40 && agentAlive; i++) {
      try {
        process.kill(agentPid, 0);
        await new Promise((r) => setTimeout(r, 250));
      } catch {
        agentAlive = false;
      }
    }
    assert.equal(agentAlive, false, 'the sandbox agent stopped with the panel');
    for (let i = 0; i < 40 && leftovers().length > 0; i++) await new Promise((r) => setTimeout(r, 250));
    assert.deepEqual(leftovers(), [], 'no sandbox service outlives Ctrl-C');
    return { out, stopCode };
  };
  const first = await run();
  assert.equal(first.stopCode, 0);
  assert.match(first.out, /username: admin/);
  assert.match(first.out, /password: \S{12,}/);
  assert.match(first.out, /\/setup\?token=/);
  // The second run switches the sandbox host to reverse mode: its agent dials the panel.
  const second = await run(['--sandbox-reverse']);
  assert.equal(second.stopCode, 0);
  assert.ok(!/password:/.test(second.out), 'no new admin on the second run');
  const agentCfg = JSON.parse(
    readFileSync(path.join(data, 'sandbox/etc/ponio-agent/config.json'), 'utf8'),
  ) as {
    connect?: string[];
    listen?: string;
  };
  assert.match(agentCfg.connect?.[0] ?? '', /^wss:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(agentCfg.listen, undefined);
  assert.match(readFileSync(path.join(data, 'sandbox/agent.log'), 'utf8'), /"msg":"connected to the panel"/);
  const list = cli(['user', 'list', '--json', '--data-dir', data]);
  assert.equal((JSON.parse(list.stdout) as unknown[]).length, 1);
  const db = openDatabase(path.join(data, 'panel.db'));
  try {
    const hosts = db.prepare('SELECT id, status, mode FROM hosts').all();
    assert.deepEqual(hosts, [{ id: 'sandbox', status: 'enrolled', mode: 'reverse' }]);
  } finally {
    db.close();
  }
});

test('serve --dev-sandbox --no-sandbox: the panel alone, no sandbox host or services', async () => {
  const data = path.join(tmp(), 'data');
  const child = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--dev-sandbox',
      '--no-sandbox',
      '--port',
      '0',
      '--agent-listen',
      'off',
      '--data-dir',
      data,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!/PonIO panel: https:\/\/\S+/.test(out) && Date.now() < deadline && child.exitCode === null)
    await new Promise((r) => setTimeout(r, 100));
  const url = /PonIO panel: (https:\/\/\S+)/.exec(out)?.[1];
  assert.ok(url, out);
  const ca = readFileSync(path.join(data, 'pki/ca.crt'), 'utf8');
  assert.equal((await get(`${url}/login`, ca)).status, 200);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(!/Sandbox host/.test(out), out);
  assert.ok(!existsSync(path.join(data, 'sandbox')), 'no sandbox dir');
  const db = openDatabase(path.join(data, 'panel.db'));
  try {
    assert.deepEqual(db.prepare('SELECT id FROM hosts').all(), [], 'no host enrolled');
  } finally {
    db.close();
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  assert.equal(await exited, 0);
});
