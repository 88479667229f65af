// Crash safety of PHP per site: a real agent process is killed at every step of create website
// with PHP, set website php (on for a www-data site, settings change, off) and delete of a PHP
// site (test/helpers/kill-points.ts); after each restart the vhosts, the pools, the site tree
// and its owner, the site user, and what Apache + php-fpm serve are as before or as after.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fsp, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { siteUserName } from '../../agent/modules/websites/php-pool.ts';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { testManager } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { fetchSite, portOf } from '../helpers/websites.ts';
import {
  KillHarness,
  killAtEveryStep,
  listTree,
  tempFiles,
  type KillScenario,
} from '../helpers/kill-points.ts';
import { freePort } from '../helpers/enroll.ts';

const HOST = 'crashphp';
const DOMAIN = `k${Math.random().toString(36).slice(2, 7)}.crashphp.test`;
const USER = siteUserName(DOMAIN);
const PROBE = '<?php echo "php-as-", posix_getpwuid(posix_geteuid())["name"], "-", ini_get("memory_limit");';
let pki: TestPki;
let sandbox: string;
let m: ConnectionManager;
let h: KillHarness;
let apache2: string;
let port = 0;

const sb = (rel: string): string => path.join(sandbox, rel);
const docroot = (): string => sb(`var/www/${DOMAIN}/public_html`);

function userEntry(): { uid: number; gid: number } | null {
  try {
    const f = execFileSync('getent', ['passwd', USER], { encoding: 'utf8' }).split(':');
    return { uid: Number(f[2]), gid: Number(f[3]) };
  } catch {
    return null;
  }
}

async function site() {
  const r = await h.ok('list websites', {});
  if (r.url !== undefined) port = portOf(r.url);
  return r.websites.find((s) => s.domain === DOMAIN);
}

async function probe(): Promise<void> {
  const st = await fsp.stat(docroot());
  const f = path.join(docroot(), 'probe.php');
  await fsp.writeFile(f, PROBE, { mode: 0o644 });
  await fsp.chown(f, st.uid, st.gid);
}

type State = 'absent' | 'static' | 'php' | 'php64';
async function ensure(state: State): Promise<void> {
  let s = await site();
  if (state === 'absent' || (state === 'static' && s && (s.owner ?? null) !== null)) {
    if (s) await h.ok('delete website', { domain: DOMAIN, removeFiles: true });
    if (state === 'absent') return;
    s = undefined;
  }
  if (!s) await h.ok('create website', { domain: DOMAIN, ...(state === 'static' ? {} : { php: '8.2' }) });
  if (state === 'php' || state === 'php64') {
    const want = state === 'php64' ? { memoryLimitMb: 64 } : {};
    const now = await site();
    if (now?.php?.version !== '8.2' || JSON.stringify(now.php.settings) !== JSON.stringify(want))
      await h.ok('set website php', { domain: DOMAIN, php: '8.2', phpSettings: want });
  }
  await probe();
}

async function snapshot(): Promise<unknown> {
  let configTest = 'ok';
  try {
    execFileSync(apache2, ['-t', '-f', sb('etc/apache2/apache2.conf')], { stdio: 'pipe' });
  } catch (e) {
    configTest = String((e as { stderr?: Buffer }).stderr ?? e);
  }
  const u = userEntry();
  // The site user's numbers may differ between runs (useradd picks them): name them.
  const norm = (lines: string[]): string[] =>
    u === null
      ? lines
      : lines.map((l) => l.replace(` ${u.uid}:`, ' SITE:').replace(`:${u.gid} `, ':SITEGRP '));
  const served = await fetchSite(port, DOMAIN, '/probe.php');
  return {
    available: await listTree(sb('etc/apache2/sites-available')),
    enabled: await listTree(sb('etc/apache2/sites-enabled')),
    pools: await listTree(sb('etc/php/8.2/fpm/pool.d')),
    tree: norm(await listTree(sb(`var/www/${DOMAIN}`), (rel) => rel.startsWith('logs/'))),
    user: u !== null,
    temps: await tempFiles([
      sb('etc/apache2/sites-available'),
      sb('etc/apache2/sites-enabled'),
      sb('etc/php/8.2/fpm/pool.d'),
      sb('var/www'),
      sb('var/lib/ponio-agent/calls'),
    ]),
    unfinished: (await fsp.readdir(sb('var/lib/ponio-agent/calls')).catch(() => [])).filter((n) =>
      n.startsWith('x-'),
    ),
    configTest,
    served: `${served.status} ${served.status === 200 ? served.body.slice(0, 60) : ''}`,
    other: (await fetchSite(port, 'keep.test')).status === 200,
  };
}

before(async () => {
  apache2 = requireProgram('apache2', 'apache2');
  requireProgram('php-fpm8.2', 'php8.2-fpm');
  requireRoot('the PHP crash test');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-crashphp-'));
  const config = path.join(sandbox, 'agent.json');
  writeFileSync(config, JSON.stringify({ modules: { ftp: false, mysql: false, firewall: false } }));
  const agentPort = await freePort();
  m = testManager(pki);
  m.add({ id: HOST, address: '127.0.0.1', port: agentPort });
  h = new KillHarness(m, HOST, [
    ...['--config', config, '--listen', `127.0.0.1:${agentPort}`, '--sandbox', sandbox],
    ...['--cert', files.certFile, '--key', files.keyFile, '--ca', files.caFile],
  ]);
  await h.start(null);
  await h.ok('create website', { domain: 'keep.test' });
  await site();
});

after(async () => {
  await h?.start(null).catch(() => undefined);
  await h?.call('delete website', { domain: DOMAIN, removeFiles: true }).catch(() => null);
  await h?.stop();
  await m?.close();
  for (const pidFile of ['run/apache2/apache2.pid', 'run/php/php8.2-fpm.pid']) {
    const pid = Number(await fsp.readFile(sb(pidFile), 'utf8').catch(() => ''));
    if (pid > 1) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  }
  if (userEntry() !== null) execFileSync('userdel', [USER]);
  if (sandbox) await fsp.rm(sandbox, { recursive: true, force: true });
  if (pki) await fsp.rm(pki.dir, { recursive: true, force: true });
});

const cases: Array<[KillScenario['event'], object, State, string]> = [
  ['create website', { domain: DOMAIN, php: '8.2' }, 'absent', 'create with PHP'],
  ['set website php', { domain: DOMAIN, php: '8.2' }, 'static', 'PHP on for a www-data site'],
  ['set website php', { domain: DOMAIN, php: '8.2', phpSettings: { memoryLimitMb: 64 } }, 'php', 'settings'],
  ['set website php', { domain: DOMAIN, php: 'none' }, 'php64', 'PHP off'],
  ['delete website', { domain: DOMAIN, removeFiles: true }, 'php', 'delete a PHP site'],
];
for (const [event, params, from, what] of cases) {
  test(`a kill at any step of "${event}" (${what}) leaves it fully applied or fully absent`, async (t) => {
    const r = await killAtEveryStep(h, {
      event,
      params: () => params as never,
      setup: () => ensure(from),
      snapshot,
    }).catch((e: unknown) => {
      console.error(
        'DEBUG',
        h.proc
          ?.output()
          .split('\n')
          .filter((l) => /interrupt|recover|error/i.test(l))
          .join('\n'),
      );
      throw e;
    });
    t.diagnostic(`${r.steps} kill points: ${r.outcomes.join(' ')}`);
    assert.ok(r.steps >= 3, `${event}: ${r.steps} kill points`);
  });
}
