// Crash safety of every websites mutation: a real agent process is killed at every step of
// create / enable / disable / delete website in turn (test/helpers/kill-points.ts); after each
// restart the host is exactly as before the call or exactly as after it: the vhost files and
// links, the site tree, `apache2 -t`, and what the (same, adopted) sandbox Apache serves.
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
import { fetchSite, portOf } from '../helpers/websites.ts';
import {
  KillHarness,
  killAtEveryStep,
  listTree,
  tempFiles,
  type KillScenario,
} from '../helpers/kill-points.ts';
import { freePort } from '../helpers/enroll.ts';

const HOST = 'crashweb';
const DOMAIN = 'kill.test';
let pki: TestPki;
let sandbox: string;
let m: ConnectionManager;
let h: KillHarness;
let apache2: string;
let port = 0;

const sb = (rel: string): string => path.join(sandbox, rel);

async function sites(): Promise<{ domain: string; enabled: boolean }[]> {
  const r = await h.ok('list websites', {});
  if (r.url !== undefined) port = portOf(r.url);
  return r.websites;
}

/** Brings the test site to a state: absent, or present and enabled / disabled. */
async function ensure(state: 'absent' | 'enabled' | 'disabled'): Promise<void> {
  const site = (await sites()).find((s) => s.domain === DOMAIN);
  if (state === 'absent') {
    if (site) await h.ok('delete website', { domain: DOMAIN, removeFiles: true });
    return;
  }
  if (!site) await h.ok('create website', { domain: DOMAIN });
  const enabled = site?.enabled ?? true;
  if (state === 'disabled' && enabled) await h.ok('disable website', { domain: DOMAIN });
  if (state === 'enabled' && !enabled) await h.ok('enable website', { domain: DOMAIN });
}

async function snapshot(): Promise<unknown> {
  let configTest = 'ok';
  try {
    execFileSync(apache2, ['-t', '-f', sb('etc/apache2/apache2.conf')], { stdio: 'pipe' });
  } catch (e) {
    configTest = String((e as { stderr?: Buffer }).stderr ?? e);
  }
  return {
    available: await listTree(sb('etc/apache2/sites-available')),
    enabled: await listTree(sb('etc/apache2/sites-enabled')),
    // Apache's own log files under logs/ come and go with the reloads: the directory counts.
    tree: await listTree(sb(`var/www/${DOMAIN}`), (rel) => rel.startsWith('logs/')),
    temps: await tempFiles([
      sb('etc/apache2/sites-available'),
      sb('etc/apache2/sites-enabled'),
      sb('var/www'),
      sb('var/lib/ponio-agent'),
      sb('var/lib/ponio-agent/calls'),
    ]),
    unfinished: (await fsp.readdir(sb('var/lib/ponio-agent/calls')).catch(() => [])).filter((n) =>
      n.startsWith('x-'),
    ),
    configTest,
    served: (await fetchSite(port, DOMAIN)).status,
    // The other site is served in every state (a change to one site never takes it down).
    other: (await fetchSite(port, 'keep.test')).status === 200,
  };
}

const scenario = (
  event: KillScenario['event'],
  params: object,
  from: 'absent' | 'enabled' | 'disabled',
): KillScenario => ({ event, params: () => params, setup: () => ensure(from), snapshot });

before(async () => {
  apache2 = requireProgram('apache2', 'apache2');
  requireRoot('the websites crash test');
  pki = await makeTestPki();
  const files = await pki.agent(HOST);
  sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-crashweb-'));
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
  // Another site that must be served throughout.
  await h.ok('create website', { domain: 'keep.test' });
  await sites();
});

after(async () => {
  await h?.stop();
  await m?.close();
  const pid = Number(await fsp.readFile(sb('run/apache2/apache2.pid'), 'utf8').catch(() => ''));
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
  ['create website', { domain: DOMAIN }, 'absent'],
  ['disable website', { domain: DOMAIN }, 'enabled'],
  ['enable website', { domain: DOMAIN }, 'disabled'],
  ['delete website', { domain: DOMAIN, removeFiles: true }, 'enabled'],
] as const) {
  test(`a kill at any step of "${event}" leaves it fully applied or fully absent`, async (t) => {
    const r = await killAtEveryStep(h, scenario(event, params, from));
    t.diagnostic(`${r.steps} kill points: ${r.outcomes.join(' ')}`);
    assert.ok(r.steps >= 3, `${event}: ${r.steps} kill points`);
    assert.equal(r.outcomes.length, r.steps);
  });
}
