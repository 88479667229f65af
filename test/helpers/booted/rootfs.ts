// The Debian 12 root file system the booted tier boots (test/booted/): made once with debootstrap
// from the machine's own Debian mirror (the one apt uses), with every package the tier's tests
// need baked in, and cached outside the repo under a name derived from its recipe, so a run
// installs nothing with apt inside the containers and a second run reuses the first one's tree.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { requireProgram } from '../programs.ts';

export const SUITE = 'bookworm';

/**
 * What the containers run: systemd as PID 1 with networkd (it brings the test's veth up at boot,
 * so "before the network is up" is a real moment), the services the agent drives in system mode,
 * and what the installers and tests call. Node.js is not here: Debian 12 ships 18, the host's
 * Node.js >= 20 is bind-mounted at /usr/bin/node (container.ts).
 */
export const ROOTFS_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'iproute2',
  'iptables',
  'apache2',
  'proftpd-core',
  'mariadb-server',
  'mariadb-client',
  'curl',
  'ca-certificates',
  'openssl',
  'procps',
  'adduser',
] as const;

/** Units that only cost boot time or wake up during a test. */
const MASKED = [
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'dpkg-db-backup.timer',
  'e2scrub_all.timer',
  'fstrim.timer',
  'systemd-tmpfiles-clean.timer',
  'console-getty.service',
  'getty@.service',
  'systemd-timesyncd.service',
];

/** Bumped when the recipe below changes in a way the package list does not show. */
const RECIPE_VERSION = 2;

export const CACHE_DIR = process.env.PONIO_TEST_CACHE ?? '/var/cache/ponio-test';

/**
 * The Debian mirror apt on this machine uses (deb822 .sources or one-line sources.list), for the
 * main archive (not -security/-updates). Never another host.
 */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list'];
  try {
    for (const f of readdirSync('/etc/apt/sources.list.d').sort()) files.push(`/etc/apt/sources.list.d/${f}`);
  } catch {
    /* none */
  }
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (k: string): string[] =>
          (new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(stanza)?.[1] ?? '').trim().split(/\s+/);
        if (field('Suites').includes(SUITE) && field('Types').includes('deb')) {
          const uri = field('URIs').find((u) => /^https?:\/\//.test(u));
          if (uri) return uri.replace(/\/$/, '');
        }
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+)\s+(\S+)\s/.exec(line.trim() + ' ');
        if (m?.[1] && m[2] === SUITE) return m[1].replace(/\/$/, '');
      }
    }
  }
  throw new Error(`no apt source for Debian ${SUITE} found in /etc/apt/sources.list*`);
}

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err)
        reject(
          new Error(
            `${cmd} ${args.join(' ')} failed: ${String(err.message)}\n${stderr.slice(-3000)}${stdout.slice(-3000)}`,
          ),
        );
      else resolve(stdout);
    });
  });
}

export function rootfsKey(mirror: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ SUITE, mirror, ROOTFS_PACKAGES, MASKED, RECIPE_VERSION }))
    .digest('hex')
    .slice(0, 12);
}

let cached: Promise<string> | undefined;

/**
 * The cached root file system, built first when missing (cold: debootstrap downloads ~300
 * packages from the mirror; docs/development.md has the time). Built in a temp dir next to the
 * cache entry and renamed into place, so a build killed halfway never leaves a tree that looks
 * finished; two builds racing each make their own and the loser drops its copy. Read-only to the
 * tests: every boot runs on an overlay of it (container.ts).
 */
export function cachedRootfs(): Promise<string> {
  cached ??= build();
  return cached;
}

async function build(): Promise<string> {
  requireProgram('debootstrap', 'debootstrap');
  requireProgram('systemd-nspawn', 'systemd-container');
  const mirror = debianMirror();
  const dir = path.join(CACHE_DIR, `rootfs-${SUITE}-${rootfsKey(mirror)}`);
  if (existsSync(path.join(dir, 'etc/os-release'))) return dir;
  mkdirSync(CACHE_DIR, { recursive: true, mode: 0o755 });
  // Leftovers of builds that were killed (their pid is gone).
  for (const e of readdirSync(CACHE_DIR)) {
    const m = /^\.build-(\d+)-/.exec(e);
    if (m && !pidAlive(Number(m[1]))) rmSync(path.join(CACHE_DIR, e), { recursive: true, force: true });
  }
  const tmp = path.join(CACHE_DIR, `.build-${process.pid}-${path.basename(dir)}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    await run(
      'debootstrap',
      ['--variant=minbase', `--include=${ROOTFS_PACKAGES.join(',')}`, SUITE, tmp, mirror],
      15 * 60_000,
    );
    await configureRootfs(tmp, mirror);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(path.join(dir, 'etc/os-release'))) throw e;
      rmSync(tmp, { recursive: true, force: true }); // another run finished first
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

/** What the tier changes in debootstrap's tree (exported for rebuilding a cache entry by hand). */
export async function configureRootfs(tmp: string, mirror: string): Promise<void> {
  // Boot-time configuration: networkd brings up the test's link (the test writes its .network
  // file into each container's overlay); nothing else wakes up during a test.
  await run('systemctl', ['--root', tmp, 'enable', 'systemd-networkd.service'], 60_000);
  await run('systemctl', ['--root', tmp, 'mask', ...MASKED], 60_000);
  writeFileSync(path.join(tmp, 'etc/hostname'), 'ponio-booted\n');
  writeFileSync(path.join(tmp, 'etc/hosts'), '127.0.0.1 localhost ponio-booted\n::1 localhost\n');
  // apt inside the containers (the .deb test) uses the same mirror and never waits on it.
  writeFileSync(path.join(tmp, 'etc/apt/sources.list'), `deb ${mirror} ${SUITE} main\n`);
  writeFileSync(path.join(tmp, 'etc/machine-id'), '');
  rmSync(path.join(tmp, 'var/cache/apt/archives'), { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'var/cache/apt/archives/partial'), { recursive: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
