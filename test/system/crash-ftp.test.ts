// Crash safety of every FTP mutation: a real agent process is killed at every step of create /
// set password / disable / enable / delete ftp user in turn (test/helpers/kill-points.ts); after
// each restart the host is exactly as before the call or exactly as after it: the user file
// (which password each user's hash verifies, locked or not), the home directories, no temp
// copy of the user file, and `proftpd -t`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { freePort } from '../helpers/enroll.ts';
import { KillHarness, killAtEveryStep, listTree, tempFiles } from '../helpers/kill-points.ts';

const HOST = 'crashftp';
const USER = 'killuser';
const PW1 = 'first-Passw0rd-1';
const PW2 = 'second-Passw0rd-2';
let pki: TestPki;
let sandbox: string;
let m: ConnectionManager;
let h: KillHarness;
let proftpd: string;

const sb = (rel: string): string => path.join(sandbox, rel);
const home = (): string => sb(`srv/ftp/${USER}/files`);

/** The user file's lines for the test user: [home, uid, gid, enabled, which password]. */
async function users(): Promise<{ home: string; enabled: boolean; password: string }[]> {
  const text = await fsp.readFile(sb('etc/proftpd/ftpd.passwd'), 'utf8').catch(() => '');
  const out: { home: string; enabled: boolean; password: string }[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] !== USER) continue;
    const hash = f[1] ?? '';
    const bare = hash.replace(/^!+/, '');
    const salt = /^\$6\$([^$]+)\$/.exec(bare)?.[1] ?? '';
    const which = [PW1, PW2].find(
      (pw) => execFileSync('openssl', ['passwd', '-6', '-salt', salt, pw]).toString().trim() === bare,
    );
    out.push({
      home: f[5] ?? '',
      enabled: bare === hash,
      password: which === PW1 ? 'PW1' : which === PW2 ? 'PW2' : '?',
    });
  }
  return out;
}

async function ensure(state: 'absent' | 'enabled' | 'disabled'): Promise<void> {
  let u = (await users())[0];
  if (state === 'absent') {
    if (u) await h.ok('delete ftp user', { username: USER });
    // Deleting a user keeps its files; the state before a create has none.
    await fsp.rm(sb(`srv/ftp/${USER}`), { recursive: true, force: true });
    return;
  }
  // (Not with "set ftp password": the event under test is armed to die at its first call.)
  if (u && u.password !== 'PW1') await h.ok('delete ftp user', { username: USER });
  if (!u || u.password !== 'PW1')
    await h.ok('create ftp user', { username: USER, password: PW1, home: home() });
  u = (await users())[0];
  const enabled = u?.enabled ?? true;
  if (state === 'disabled' && enabled) await h.ok('disable ftp user', { username: USER });
  if (state === 'enabled' && !enabled) await h.ok('enable ftp user', { username: USER });
}

async function snapshot(): Promise<unknown> {
  let check = 'ok';
  try {
    execFileSync(proftpd, ['-t', '-c', sb('etc/proftpd/proftpd.conf')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    check = String((e as { stderr?: Buffer }).stderr ?? e);
  }
  return {
    users: await users(),
    homes: await listTree(sb('srv/ftp')),
    temps: await tempFiles([
      sb('etc/proftpd'),
      sb('srv/ftp'),
      sb('var/lib/ponio-agent'),
      sb('var/lib/ponio-agent/calls'),
    ]),
    check,
  };
}

before(async () => {
  proftpd = requireProgram('proftpd', 'proftpd-core');
  requireProgram('openssl', 'openssl');
  requireRoot('the FTP crash test');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-crashftp-'));
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(config, JSON.stringify({ modules: { websites: false, mysql: false, firewall: false } }));
  const agentPort = await freePort();
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agentPort });
  h = new KillHarness(m, HOST, [
    ...['--config', config, '--listen', `127.0.0.1:${agentPort}`, '--sandbox', sandbox],
    ...['--cert', files.certFile, '--key', files.keyFile, '--ca', files.caFile],
  ]);
});

after(async () => {
  await h?.stop();
  await m?.close();
  const pid = Number(await fsp.readFile(sb('run/proftpd.pid'), 'utf8').catch(() => ''));
  if (pid > 1) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

for (const [event, params, from] of [
  ['create ftp user', () => ({ username: USER, password: PW2, home: home() }), 'absent'],
  ['set ftp password', () => ({ username: USER, password: PW2 }), 'enabled'],
  ['disable ftp user', () => ({ username: USER }), 'enabled'],
  ['enable ftp user', () => ({ username: USER }), 'disabled'],
  ['delete ftp user', () => ({ username: USER }), 'enabled'],
] as const) {
  test(`a kill at any step of "${event}" leaves it fully applied or fully absent`, async (t) => {
    const r = await killAtEveryStep(h, {
      event,
      params,
      setup: () => ensure(from),
      snapshot,
    });
    t.diagnostic(`${r.steps} kill points: ${r.outcomes.join(' ')}`);
    assert.ok(r.steps >= 2, `${event}: ${r.steps} kill points`);
  });
}
