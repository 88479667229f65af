// The websites crash cases (run by test/system/crash-websites.test.ts, harness test/helpers/crash.ts):
// after each kill and restart the host is exactly as before the call or exactly as after it —
// the vhost files and links, the site tree, `apache2 -t`, what the (same, adopted) sandbox
// Apache serves, and another site that is served in every state.
import { execFileSync } from 'node:child_process';
import { requireProgram } from '../../helpers/programs.ts';
import { fetchSite, portOf } from '../../helpers/websites.ts';
import { crashCase, crashSuite, listTree, type CrashHost } from '../../helpers/crash.ts';

const DOMAIN = 'kill.test';
let apache2 = '';
let port = 0;

async function sites(h: CrashHost): Promise<{ domain: string; enabled: boolean }[]> {
  const r = await h.ok('list websites', {});
  if (r.url !== undefined) port = portOf(r.url);
  return r.websites;
}

/** Brings the test site to a state: absent, or present and enabled / disabled. */
const ensure =
  (state: 'absent' | 'enabled' | 'disabled') =>
  async (h: CrashHost): Promise<void> => {
    const site = (await sites(h)).find((s) => s.domain === DOMAIN);
    if (state === 'absent') {
      if (site) await h.ok('delete website', { domain: DOMAIN, removeFiles: true });
      return;
    }
    if (!site) await h.ok('create website', { domain: DOMAIN });
    const enabled = site?.enabled ?? true;
    if (state === 'disabled' && enabled) await h.ok('disable website', { domain: DOMAIN });
    if (state === 'enabled' && !enabled) await h.ok('enable website', { domain: DOMAIN });
  };

const site = { domain: DOMAIN };
const other = { domain: 'other.test' };

export default crashSuite({
  name: 'websites',
  requires() {
    apache2 = requireProgram('apache2', 'apache2');
  },
  modules: () => ({ websites: {} }),
  async started(h) {
    // Another site that must be served throughout.
    await h.ok('create website', { domain: 'keep.test' });
    await sites(h);
  },
  async snapshot(h) {
    let configTest = 'ok';
    try {
      execFileSync(apache2, ['-t', '-f', h.sb('etc/apache2/apache2.conf')], { stdio: 'pipe' });
    } catch (e) {
      configTest = String((e as { stderr?: Buffer }).stderr ?? e);
    }
    return {
      available: await listTree(h.sb('etc/apache2/sites-available')),
      enabled: await listTree(h.sb('etc/apache2/sites-enabled')),
      // Apache's own log files under logs/ come and go with the reloads: the directory counts.
      tree: await listTree(h.sb(`var/www/${DOMAIN}`), (rel) => rel.startsWith('logs/')),
      others: (await listTree(h.sb('var/www'))).filter((l) => !l.startsWith(DOMAIN) && !l.includes('/logs/')),
      configTest,
      served: (await fetchSite(port, DOMAIN)).status,
      // The other site is served in every state (a change to one site never takes it down).
      keep: (await fetchSite(port, 'keep.test')).status === 200,
    };
  },
  cases: [
    crashCase({
      event: 'create website',
      params: () => site,
      otherParams: () => other,
      setup: ensure('absent'),
      minSteps: 3,
    }),
    crashCase({
      event: 'disable website',
      params: () => site,
      otherParams: () => other,
      setup: ensure('enabled'),
      minSteps: 3,
    }),
    crashCase({
      event: 'enable website',
      params: () => site,
      otherParams: () => other,
      setup: ensure('disabled'),
      minSteps: 3,
    }),
    crashCase({
      event: 'delete website',
      params: () => ({ ...site, removeFiles: true }),
      otherParams: () => ({ ...site, removeFiles: false }),
      setup: ensure('enabled'),
      minSteps: 3,
    }),
  ],
});
