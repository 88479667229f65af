// The crash cases of PHP per site (run by test/system/crash-websites-php.test.ts, harness
// test/helpers/crash.ts): create website with PHP, set website php (on for a www-data site,
// settings change, off) and delete of a PHP site; after each kill and restart the vhosts, the
// pools, the site tree and its owner, the site user, and what Apache + php-fpm serve are as
// before or as after.
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { siteUserName } from '../../../agent/modules/websites/php-pool.ts';
import { requireProgram } from '../../helpers/programs.ts';
import { fetchSite, portOf } from '../../helpers/websites.ts';
import { crashCase, crashSuite, listTree, type CrashHost } from '../../helpers/crash.ts';

const DOMAIN = `k${Math.random().toString(36).slice(2, 7)}.crashphp.test`;
const OTHER = `o${Math.random().toString(36).slice(2, 7)}.crashphp.test`;
const USER = siteUserName(DOMAIN);
const PROBE = '<?php echo "php-as-", posix_getpwuid(posix_geteuid())["name"], "-", ini_get("memory_limit");';
let apache2 = '';
let port = 0;

const docroot = (h: CrashHost): string => h.sb(`var/www/${DOMAIN}/public_html`);

function userEntry(): { uid: number; gid: number } | null {
  try {
    const f = execFileSync('getent', ['passwd', USER], { encoding: 'utf8' }).split(':');
    return { uid: Number(f[2]), gid: Number(f[3]) };
  } catch {
    return null;
  }
}

async function site(h: CrashHost) {
  const r = await h.ok('list websites', {});
  if (r.url !== undefined) port = portOf(r.url);
  return r.websites.find((s) => s.domain === DOMAIN);
}

async function probe(h: CrashHost): Promise<void> {
  const st = await fsp.stat(docroot(h));
  const f = `${docroot(h)}/probe.php`;
  await fsp.writeFile(f, PROBE, { mode: 0o644 });
  await fsp.chown(f, st.uid, st.gid);
}

type State = 'absent' | 'static' | 'php' | 'php64';
const ensure =
  (state: State) =>
  async (h: CrashHost): Promise<void> => {
    let s = await site(h);
    if (state === 'absent' || (state === 'static' && s && (s.owner ?? null) !== null)) {
      if (s) await h.ok('delete website', { domain: DOMAIN, removeFiles: true });
      if (state === 'absent') return;
      s = undefined;
    }
    if (!s) await h.ok('create website', { domain: DOMAIN, ...(state === 'static' ? {} : { php: '8.2' }) });
    if (state === 'php' || state === 'php64') {
      const want = state === 'php64' ? { memoryLimitMb: 64 } : {};
      const now = await site(h);
      if (now?.php?.version !== '8.2' || JSON.stringify(now.php.settings) !== JSON.stringify(want))
        await h.ok('set website php', { domain: DOMAIN, php: '8.2', phpSettings: want });
    }
    await probe(h);
  };

export default crashSuite({
  name: 'websites-php',
  requires() {
    apache2 = requireProgram('apache2', 'apache2');
    requireProgram('php-fpm8.2', 'php8.2-fpm');
  },
  modules: () => ({ websites: {} }),
  async started(h) {
    await h.ok('create website', { domain: 'keep.test' });
    await site(h);
  },
  async after() {
    // Its pool's workers may take a moment to exit after the master stopped.
    for (let i = 0; i < 50 && userEntry() !== null; i++) {
      try {
        execFileSync('userdel', [USER], { stdio: 'pipe' });
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  },
  async snapshot(h) {
    let configTest = 'ok';
    try {
      execFileSync(apache2, ['-t', '-f', h.sb('etc/apache2/apache2.conf')], { stdio: 'pipe' });
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
      available: await listTree(h.sb('etc/apache2/sites-available')),
      enabled: await listTree(h.sb('etc/apache2/sites-enabled')),
      pools: await listTree(h.sb('etc/php/8.2/fpm/pool.d')),
      tree: norm(await listTree(h.sb(`var/www/${DOMAIN}`), (rel) => rel.startsWith('logs/'))),
      user: u !== null,
      configTest,
      served: `${served.status} ${served.status === 200 ? served.body.slice(0, 60) : ''}`,
      other: (await fetchSite(port, 'keep.test')).status === 200,
    };
  },
  cases: [
    crashCase({
      event: 'create website',
      label: 'with PHP',
      params: () => ({ domain: DOMAIN, php: '8.2' }),
      otherParams: () => ({ domain: OTHER, php: '8.2' }),
      setup: ensure('absent'),
      minSteps: 3,
    }),
    crashCase({
      event: 'set website php',
      label: 'PHP on for a www-data site',
      params: () => ({ domain: DOMAIN, php: '8.2' }),
      otherParams: () => ({ domain: DOMAIN, php: '8.2', phpSettings: { memoryLimitMb: 32 } }),
      setup: ensure('static'),
      minSteps: 3,
    }),
    crashCase({
      event: 'set website php',
      label: 'settings',
      params: () => ({ domain: DOMAIN, php: '8.2', phpSettings: { memoryLimitMb: 64 } }),
      otherParams: () => ({ domain: DOMAIN, php: '8.2', phpSettings: { memoryLimitMb: 32 } }),
      setup: ensure('php'),
      minSteps: 3,
    }),
    crashCase({
      event: 'set website php',
      label: 'PHP off',
      params: () => ({ domain: DOMAIN, php: 'none' }),
      otherParams: () => ({ domain: DOMAIN, php: '8.2' }),
      setup: ensure('php64'),
      minSteps: 3,
    }),
    crashCase({
      event: 'delete website',
      label: 'a PHP site',
      params: () => ({ domain: DOMAIN, removeFiles: true }),
      otherParams: () => ({ domain: DOMAIN, removeFiles: false }),
      setup: ensure('php'),
      minSteps: 3,
    }),
  ],
});
