// Files belong to the site: FTP users of a PHP site act as the site's own user, also those made
// before PHP was turned on (they follow the site's owner). Real proftpd, Apache and php-fpm of a
// sandbox agent; real FTP logins and uploads; Apache runs the uploaded script in the site's pool.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'basic-ftp';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { siteUserName } from '../../agent/modules/websites/php-pool.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, RequestIn } from '../../shared/protocol/index.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { eventually, fetchSite, portOf } from '../helpers/websites.ts';

const HOST = 'phpftp';
const DOMAIN = `f${Math.random().toString(36).slice(2, 7)}.phpftp.test`;
const PW = 'correct horse 1';
let pki: TestPki;
let agent: RunningAgent;
let m: ConnectionManager;
let sandbox: string;
let ftpPort: number;
let port: number;

const call = <E extends EventName>(event: E, params: RequestIn<E>) => m.call(HOST, event, params);
const uidOf = (user: string): number => Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));

async function upload(user: string, name: string, body: string): Promise<void> {
  const c = new Client(10_000);
  try {
    await c.access({ host: '127.0.0.1', port: ftpPort, user, password: PW });
    await c.uploadFrom(Readable.from([body]), name);
  } finally {
    c.close();
  }
}

before(async () => {
  requireRoot('the PHP + FTP system test');
  requireProgram('proftpd', 'proftpd-core');
  requireProgram('apache2', 'apache2');
  requireProgram('php-fpm8.2', 'php8.2-fpm');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-phpftp-'));
  const cfg = loadAgentConfig(
    { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
    {},
  );
  agent = await startAgent(cfg, quietLogger);
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agent.port });
  await m.waitForState(HOST, 'online');
  ftpPort = (JSON.parse(readFileSync(path.join(sandbox, 'run/proftpd.json'), 'utf8')) as { port: number })
    .port;
});

after(async () => {
  await call('delete website', { domain: DOMAIN, removeFiles: true }).catch(() => null);
  await m?.close();
  await agent?.stop();
  const u = siteUserName(DOMAIN);
  if (execFileSync('getent', ['passwd'], { encoding: 'utf8' }).includes(`${u}:`))
    execFileSync('userdel', [u]);
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
});

test('FTP users of a site act as its own user once PHP is on; uploads are the site’s files', async () => {
  const site = await call('create website', { domain: DOMAIN });
  assert.ok(site.ok, JSON.stringify(site));
  port = portOf(site.data.url);
  const docroot = site.data.docroot ?? '';
  const early = await call('create ftp user', { username: 'early', password: PW, home: docroot });
  assert.ok(early.ok, JSON.stringify(early));
  assert.equal(early.data.uid, 33, 'before PHP the site is www-data’s');

  const php = await call('set website php', { domain: DOMAIN, php: '8.2' });
  assert.ok(php.ok, JSON.stringify(php));
  const uid = uidOf(siteUserName(DOMAIN));
  // The user made before follows the site's owner (an in-process notice to the FTP module).
  await eventually(async () => {
    const l = await call('list ftp users', {});
    return l.ok && l.data.users.find((u) => u.username === 'early')?.uid === uid;
  }, 'the early FTP user to act as the site user');
  const late = await call('create ftp user', { username: 'late', password: PW, home: docroot });
  assert.ok(late.ok, JSON.stringify(late));
  assert.equal(late.data.uid, uid, 'a new FTP user of a PHP site acts as the site user');

  await upload('early', 'early.txt', 'E');
  await upload(
    'late',
    'index.php',
    '<?php echo posix_getpwuid(posix_geteuid())["name"], ":", file_get_contents(__DIR__ . "/early.txt"); file_put_contents(__DIR__ . "/early.txt", "P");',
  );
  assert.equal(statSync(path.join(docroot, 'early.txt')).uid, uid);
  assert.equal(statSync(path.join(docroot, 'index.php')).uid, uid);
  // The site's PHP reads and writes what FTP uploaded (same owner).
  const res = await fetchSite(port, DOMAIN);
  assert.equal(res.body, `${siteUserName(DOMAIN)}:E`);
  assert.equal(readFileSync(path.join(docroot, 'early.txt'), 'utf8'), 'P');
});
