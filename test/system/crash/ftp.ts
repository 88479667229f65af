// The FTP crash cases (run by test/system/crash-ftp.test.ts, harness test/helpers/crash.ts): after
// each kill and restart the host is exactly as before the call or exactly as after it — the user
// file (which password each user's hash verifies, locked or not), the home directories, and
// `proftpd -t`.
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { requireProgram } from '../../helpers/programs.ts';
import { crashCase, crashSuite, listTree, type CrashHost } from '../../helpers/crash.ts';

const USER = 'killuser';
const OTHER = 'otheruser';
const PW1 = 'first-Passw0rd-1';
const PW2 = 'second-Passw0rd-2';
let proftpd = '';

const home = (h: CrashHost, user = USER): string => h.sb(`srv/ftp/${user}/files`);

/** The user file's lines for the test user: home, enabled, which password its hash verifies. */
async function users(h: CrashHost): Promise<{ home: string; enabled: boolean; password: string }[]> {
  const text = await fsp.readFile(h.sb('etc/proftpd/ftpd.passwd'), 'utf8').catch(() => '');
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

/** The test user absent (no files), or present with PW1 and enabled / disabled. */
const ensure =
  (state: 'absent' | 'enabled' | 'disabled') =>
  async (h: CrashHost): Promise<void> => {
    let u = (await users(h))[0];
    if (state === 'absent') {
      if (u) await h.ok('delete ftp user', { username: USER });
      // Deleting a user keeps its files; the state before a create has none.
      await fsp.rm(h.sb(`srv/ftp/${USER}`), { recursive: true, force: true });
      return;
    }
    // (Not with "set ftp password": the event under test is armed to die at its first call.)
    if (u && u.password !== 'PW1') await h.ok('delete ftp user', { username: USER });
    if (!u || u.password !== 'PW1')
      await h.ok('create ftp user', { username: USER, password: PW1, home: home(h) });
    u = (await users(h))[0];
    const enabled = u?.enabled ?? true;
    if (state === 'disabled' && enabled) await h.ok('disable ftp user', { username: USER });
    if (state === 'enabled' && !enabled) await h.ok('enable ftp user', { username: USER });
  };

export default crashSuite({
  name: 'ftp',
  requires() {
    proftpd = requireProgram('proftpd', 'proftpd-core');
    requireProgram('openssl', 'openssl');
  },
  modules: () => ({ ftp: {} }),
  async snapshot(h) {
    let check = 'ok';
    try {
      execFileSync(proftpd, ['-t', '-c', h.sb('etc/proftpd/proftpd.conf')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      check = String((e as { stderr?: Buffer }).stderr ?? e);
    }
    return {
      users: await users(h),
      others: (await fsp.readFile(h.sb('etc/proftpd/ftpd.passwd'), 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith(`${USER}:`)).length,
      homes: await listTree(h.sb('srv/ftp')),
      check,
    };
  },
  cases: [
    crashCase({
      event: 'create ftp user',
      params: (h) => ({ username: USER, password: PW2, home: home(h) }),
      otherParams: (h) => ({ username: OTHER, password: PW2, home: home(h, OTHER) }),
      setup: ensure('absent'),
    }),
    crashCase({
      event: 'set ftp password',
      params: () => ({ username: USER, password: PW2 }),
      otherParams: () => ({ username: USER, password: PW1 }),
      setup: ensure('enabled'),
    }),
    crashCase({
      event: 'disable ftp user',
      params: () => ({ username: USER }),
      otherParams: () => ({ username: OTHER }),
      setup: ensure('enabled'),
    }),
    crashCase({
      event: 'enable ftp user',
      params: () => ({ username: USER }),
      otherParams: () => ({ username: OTHER }),
      setup: ensure('disabled'),
    }),
    crashCase({
      event: 'delete ftp user',
      params: () => ({ username: USER }),
      otherParams: () => ({ username: OTHER }),
      setup: ensure('enabled'),
    }),
  ],
});
