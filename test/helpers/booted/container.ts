// Booted Debian systems for the booted tier: systemd as PID 1 under systemd-nspawn, each boot on a
// fresh overlay of the cached root file system (rootfs.ts), each container on a private LAN the
// test makes (a bridge in the host's namespace with a /29 of its own: the test process is .1, the
// containers .2 and up; no route or forwarding anywhere else). Commands run inside with
// `nsenter -t <PID 1> -a`. Each container has a cgroup of its own. Containers are always powered
// off: by poweroffAll() in the tests' after() hooks, and by a process-exit guard that kills
// whatever is still running and removes the overlays, namespaces, links and cgroups, so a failing
// or interrupted test leaves nothing behind.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { requireProgram } from '../programs.ts';
import { cachedRootfs } from './rootfs.ts';

const WORK_DIR = process.env.PONIO_TEST_BOOT_DIR ?? '/var/tmp';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Where the host's Node.js (>= 20) is: bind-mounted read-only into every container. */
const NODE = process.execPath;

const ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
};

// --- cleanup guard ---------------------------------------------------------------------------

const cleanups = new Map<string, () => void>();
let guarded = false;
function guard(key: string, fn: () => void): void {
  cleanups.set(key, fn);
  if (guarded) return;
  guarded = true;
  const runAll = (): void => {
    for (const [k, f] of [...cleanups].reverse()) {
      cleanups.delete(k);
      try {
        f();
      } catch (e) {
        process.stderr.write(`booted cleanup ${k}: ${String(e)}\n`);
      }
    }
  };
  process.once('exit', runAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(sig, () => {
      runAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
}
const unguard = (key: string): void => void cleanups.delete(key);

const quiet = (cmd: string, args: readonly string[]): void => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
  } catch {
    /* already gone */
  }
};

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

// --- the LAN ---------------------------------------------------------------------------------

export interface Lan {
  bridge: string;
  /** The test process's address on the LAN. */
  hostIp: string;
  /** The next free container address. */
  nextIp(): string;
  destroy(): void;
}

const failLan = (): never => {
  throw new Error('no free private /29 found for the booted LAN');
};

/**
 * A bridge with a private /29 in a /24 that no other interface of this machine uses; names
 * (bridge, namespaces, veths, machines, overlay dirs) carry random ids, so runs side by side
 * never share anything.
 */
export function createLan(retries = 5): Lan {
  requireProgram('ip', 'iproute2');
  const id = randomBytes(3).toString('hex');
  const bridge = `pb${id}`;
  const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
  let base = '';
  for (let i = 0; i < 50 && !base; i++) {
    const b = randomBytes(2);
    const cand = `10.${200 + ((b[0] ?? 0) % 50)}.${b[1] ?? 0}`;
    if (!used.includes(` ${cand}.`)) base = cand;
  }
  if (!base) return failLan();
  const octet = 8 * (randomBytes(1)[0]! % 31);
  const at = (n: number): string => `${base}.${octet + n}`;
  ip('link', 'add', bridge, 'type', 'bridge');
  const destroy = (): void => {
    quiet('ip', ['link', 'del', bridge]);
    unguard(`lan ${bridge}`);
  };
  guard(`lan ${bridge}`, destroy);
  ip('addr', 'add', `${at(1)}/29`, 'dev', bridge);
  // Two runs at once (CI next to a developer's run) could have drawn the same /24 between the
  // read above and this add: both see it now, and both draw again.
  const mine = ` ${base}.`;
  const clash = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' })
    .split('\n')
    .some((l) => l.includes(mine) && !l.includes(` ${bridge} `));
  if (clash) {
    destroy();
    return retries > 0 ? createLan(retries - 1) : failLan();
  }
  ip('link', 'set', bridge, 'up');
  let next = 2;
  return {
    bridge,
    hostIp: at(1),
    nextIp() {
      if (next > 6) throw new Error('the booted LAN has room for 5 containers');
      return at(next++);
    },
    destroy,
  };
}

// --- containers ------------------------------------------------------------------------------

export interface Container {
  name: string;
  ip: string;
  /** The container's root as the host sees it (the overlay's merged dir). */
  root: string;
  /** The host PID of the container's PID 1 (systemd); changes at each boot. */
  pid1: number;
  /** Runs a program inside (all of PID 1's namespaces); never throws for a non-zero exit. */
  exec(cmd: string, args?: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<Run>;
  /** Like exec but throws (with stderr) unless the exit code is 0; returns stdout. */
  ok(cmd: string, args?: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** Writes a file inside (through the overlay). */
  writeFile(file: string, content: string | Buffer, mode?: number): void;
  /** `systemctl reboot`, then boots again on the same overlay (nspawn exits with 133 on reboot). */
  reboot(): Promise<void>;
  poweroff(): Promise<void>;
  /** The boot console output so far (for failure messages). */
  console(): string;
}

export interface BootOptions {
  name: string;
  /** Files written into the overlay before the first boot, by absolute path inside. */
  files?: Record<string, string>;
  /**
   * An egress-only network (a host behind NAT or in an egress-only cloud network): connections
   * the container opens work, every connection opened towards it is dropped. Set from the host
   * side into the container's namespace before each boot, in the mangle table (PREROUTING,
   * after conntrack), which nothing inside manages: PonIO's firewall module and its boot unit
   * only touch their own chains in the filter table.
   */
  egressOnly?: boolean;
}

function procChildren(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** The descendant of nspawn that is PID 1 of its own PID namespace (the container's systemd). */
function findPid1(nspawnPid: number): number | null {
  const queue = [nspawnPid];
  for (let depth = 0; depth < 4 && queue.length > 0; depth++) {
    for (const p of queue.splice(0)) {
      for (const c of procChildren(p)) {
        try {
          const nspid = /^NSpid:\s+(.+)$/m.exec(readFileSync(`/proc/${c}/status`, 'utf8'))?.[1]?.split(/\s+/);
          if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return c;
        } catch {
          /* gone */
        }
        queue.push(c);
      }
    }
  }
  return null;
}

/**
 * A cgroup named `leaf` below this process's own in the hierarchies systemd inside uses (the
 * named systemd one and the unified one of the hybrid layout nspawn sets up).
 */
function cgroupDirs(leaf: string): string[] {
  const own = readFileSync('/proc/self/cgroup', 'utf8');
  const dirs: string[] = [];
  for (const [hier, re] of [
    ['/sys/fs/cgroup/systemd', /^\d+:name=systemd:(.*)$/m],
    ['/sys/fs/cgroup/unified', /^0::(.*)$/m],
  ] as const) {
    const at = re.exec(own)?.[1];
    if (at !== undefined && existsSync(path.join(hier, 'cgroup.procs'))) dirs.push(path.join(hier, at, leaf));
  }
  if (dirs.length === 0) throw new Error('no systemd cgroup hierarchy found in /sys/fs/cgroup');
  return dirs;
}

/** Removes a cgroup and the ones below it (empty once the container is gone). */
function removeCgroup(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return;
  }
  for (const e of entries) removeCgroup(path.join(dir, e));
  try {
    rmdirSync(dir);
  } catch {
    /* still in use or already gone */
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const booting = new Set<Promise<unknown>>();
const live = new Map<string, Container>();

/**
 * Powers off every container this process booted or is still booting. For after() hooks: they
 * run even when before() failed halfway, and a Promise.all of boots that rejected leaves the
 * other boots running with nothing assigned to power them off.
 */
export async function poweroffAll(): Promise<void> {
  await Promise.all([...booting]);
  await Promise.all([...live.values()].map((c) => c.poweroff()));
}

/**
 * Boots a container on `lan`: a fresh overlay over the cached rootfs, a network namespace whose
 * eth0 (a veth on the LAN's bridge) systemd-networkd configures at boot, the host's Node.js at
 * /usr/bin/node; resolves once `systemctl is-system-running --wait` has returned.
 */
export function bootContainer(lan: Lan, opts: BootOptions): Promise<Container> {
  const p = bootOne(lan, opts);
  const tracked = p.catch(() => null);
  booting.add(tracked);
  void tracked.then(() => booting.delete(tracked));
  return p;
}

async function bootOne(lan: Lan, opts: BootOptions): Promise<Container> {
  requireProgram('systemd-nspawn', 'systemd-container');
  requireProgram('nsenter', 'util-linux');
  const lower = await cachedRootfs();
  const id = randomBytes(3).toString('hex');
  const name = `${opts.name}-${id}`;
  const dir = path.join(WORK_DIR, `ponio-booted-${name}`);
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  const root = path.join(dir, 'root');
  const ns = `ponio-bt-${id}`;
  const hostVeth = `pv${id}`;
  const addr = lan.nextIp();
  const logFile = path.join(dir, 'console.log');
  const cgroups = cgroupDirs(`ponio-booted-${name}`);
  let nspawn: ChildProcess | null = null;
  let exited: Promise<number | null> = Promise.resolve(null);
  let pid1 = 0;

  const destroy = (): void => {
    if (pid1) quiet('kill', ['-KILL', String(pid1)]);
    if (nspawn?.pid && nspawn.exitCode === null) quiet('kill', ['-KILL', String(nspawn.pid)]);
    quiet('umount', ['-l', root]);
    quiet('ip', ['netns', 'del', ns]);
    quiet('ip', ['link', 'del', hostVeth]);
    for (const d of cgroups) removeCgroup(d);
    rmSync(dir, { recursive: true, force: true });
    live.delete(name);
    unguard(`container ${name}`);
  };
  guard(`container ${name}`, destroy);

  for (const d of [upper, work, root]) mkdirSync(d, { recursive: true });
  execFileSync('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
    root,
  ]);
  ip('netns', 'add', ns);
  ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  ip('link', 'set', hostVeth, 'master', lan.bridge);
  ip('link', 'set', hostVeth, 'up');
  const egressOnly = (): void => {
    if (!opts.egressOnly) return;
    for (const tool of ['iptables', 'ip6tables'])
      execFileSync('ip', [
        'netns',
        'exec',
        ns,
        tool,
        '-t',
        'mangle',
        '-A',
        'PREROUTING',
        '-i',
        'eth0',
        '-m',
        'conntrack',
        '--ctstate',
        'NEW',
        '-j',
        'DROP',
      ]);
  };
  egressOnly();

  const writeFile = (file: string, content: string | Buffer, mode = 0o644): void => {
    const p = path.join(root, file);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content, { mode });
  };
  writeFile('/etc/hostname', `${opts.name}\n`);
  writeFile('/etc/hosts', `127.0.0.1 localhost ${opts.name}\n::1 localhost\n`);
  writeFile(
    '/etc/systemd/network/10-eth0.network',
    `[Match]\nName=eth0\n\n[Network]\nAddress=${addr}/29\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n`,
  );
  for (const [f, c] of Object.entries(opts.files ?? {})) writeFile(f, c);

  const nsenter = (
    cmd: string,
    args: readonly string[],
    o: { input?: string; timeoutMs?: number } = {},
  ): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(
        'nsenter',
        ['-t', String(pid1), '-a', '--', cmd, ...args],
        { env: ENV, timeout: o.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr: err && code === -1 ? `${stderr}\n${err.message}` : stderr });
        },
      );
      if (o.input !== undefined) child.stdin?.end(o.input);
      else child.stdin?.end();
    });

  const boot = async (): Promise<void> => {
    const fd = openSync(logFile, 'a');
    for (const d of cgroups) mkdirSync(d, { recursive: true });
    // nspawn (--keep-unit) hands the container the cgroup it runs in: each container gets one of
    // its own, entered before nspawn starts. Sharing the caller's (here the root of every
    // hierarchy) put every container's systemd into the same tree, where one container's
    // finished unit removed the cgroup another container was starting the same unit in
    // (status=219/CGROUP: systemd-network-generator, systemd-update-utmp, … failed at random
    // when containers booted at the same time, in one run or in two).
    const child = spawn(
      'sh',
      [
        '-c',
        'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; done; shift; exec "$@"',
        'sh',
        ...cgroups,
        '--',
        'systemd-nspawn',
        '--keep-unit',
        '--register=no',
        '--quiet',
        '-b',
        '-D',
        root,
        `--machine=${name}`,
        `--network-namespace-path=/run/netns/${ns}`,
        // The namespace is the container's own (the test made it for it): as with
        // --private-network, it may configure it (networkd, iptables).
        '--capability=CAP_NET_ADMIN',
        `--bind-ro=${NODE}:/usr/bin/node`,
        '--console=read-only',
      ],
      { stdio: ['ignore', fd, fd], env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '0' } },
    );
    closeSync(fd);
    nspawn = child;
    exited = new Promise((r) => child.once('exit', (code) => r(code)));
    pid1 = 0;
    const deadline = Date.now() + 30_000;
    while (!pid1 && Date.now() < deadline && child.exitCode === null) {
      await sleep(100);
      pid1 = child.pid ? (findPid1(child.pid) ?? 0) : 0;
    }
    if (!pid1) throw new Error(`container ${name} did not start:\n${consoleText()}`);
    // Boot finished: `running`, or `degraded` (then the failed units are named).
    let state = '';
    for (let i = 0; i < 3 && !['running', 'degraded'].includes(state); i++) {
      state = (
        await nsenter('systemctl', ['is-system-running', '--wait'], { timeoutMs: 120_000 })
      ).stdout.trim();
      if (!['running', 'degraded'].includes(state)) await sleep(500);
    }
    if (state === 'degraded') {
      const failed = await nsenter('systemctl', ['--failed', '--no-legend', '--plain']);
      const units = failed.stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0] ?? '')
        .filter(Boolean);
      const status = await nsenter('systemctl', ['status', '--no-pager', '-l', ...units]);
      throw new Error(
        `container ${name} booted degraded; failed units: ${units.join(' ')}\n${status.stdout}\n${consoleText()}`,
      );
    }
    if (state !== 'running')
      throw new Error(`container ${name} did not finish booting (${state}):\n${consoleText()}`);
  };

  const consoleText = (): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(-6000);
    } catch {
      return '';
    }
  };

  const waitExit = async (ms: number): Promise<number | null> => {
    const t = sleep(ms).then(() => 'timeout' as const);
    const r = await Promise.race([exited, t]);
    return r === 'timeout' ? NaN : r;
  };

  /** A reboot keeps this namespace (the test made it): empty what the kernel would have reset. */
  const resetNetns = (): void => {
    for (const tool of ['iptables', 'ip6tables'])
      for (const table of ['filter', 'nat', 'mangle', 'raw']) {
        quiet('ip', ['netns', 'exec', ns, tool, '-t', table, '-F']);
        quiet('ip', ['netns', 'exec', ns, tool, '-t', table, '-X']);
      }
    quiet('ip', ['-n', ns, 'addr', 'flush', 'dev', 'eth0']);
    quiet('ip', ['-n', ns, 'link', 'set', 'eth0', 'down']);
    const left = execFileSync('ip', ['netns', 'exec', ns, 'iptables-save'], { encoding: 'utf8' });
    if (/^-A /m.test(left)) throw new Error(`the reboot of ${name} left firewall rules:\n${left}`);
  };

  const c: Container = {
    name,
    ip: addr,
    root,
    get pid1() {
      return pid1;
    },
    exec: (cmd, args = [], o = {}) => nsenter(cmd, args, o),
    async ok(cmd, args = [], o = {}) {
      const r = await nsenter(cmd, args, o);
      if (r.code !== 0)
        throw new Error(
          `in ${name}: ${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`.slice(0, 8000),
        );
      return r.stdout;
    },
    writeFile,
    async reboot() {
      await nsenter('systemctl', ['reboot', '--no-block']);
      const code = await waitExit(90_000);
      if (code !== 133)
        throw new Error(`container ${name} did not reboot (nspawn exit ${code}):\n${consoleText()}`);
      resetNetns();
      egressOnly();
      await boot();
    },
    async poweroff() {
      if (nspawn && nspawn.exitCode === null && pid1) {
        await nsenter('systemctl', ['poweroff', '--no-block'], { timeoutMs: 10_000 });
        const code = await waitExit(60_000);
        if (Number.isNaN(code)) quiet('kill', ['-KILL', String(nspawn.pid)]);
        await waitExit(10_000);
      }
      pid1 = 0;
      destroy();
    },
    console: consoleText,
  };
  try {
    await boot();
  } catch (e) {
    destroy();
    throw e;
  }
  live.set(name, c);
  return c;
}
