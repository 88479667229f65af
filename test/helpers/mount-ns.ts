// Runs a command as if on a real Debian host whose files are temp dirs: started as
//   unshare --mount --propagation private --fork -- node --import tsx test/helpers/mount-ns.ts SPEC CMD...
// (mountNsCommand builds that argument array; no shell anywhere). In that private mount namespace
// it bind-mounts the spec's temp dirs over system paths (a missing mount point is made inside an
// overlay of its parent whose upper layer is a temp dir, so nothing is created on the host), hides
// paths under an empty tmpfs, optionally starts Debian's Apache with `apache2ctl start`, runs CMD
// with this process's stdio, forwards SIGTERM/SIGINT/SIGHUP to it, and when CMD has exited stops
// Apache (`apache2ctl stop`) and exits with CMD's status. The mounts vanish with the namespace,
// i.e. when the last process in it (CMD, Apache) has exited.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MountNsSpec {
  /** `readlink /proc/self/ns/mnt` of the caller: the helper refuses to mount in that namespace. */
  callerNs: string;
  /** A temp dir for the overlays that make missing mount points. */
  scratch: string;
  /** [temp dir, system path]: the temp dir is bind-mounted over the path, in this order. */
  binds: Array<[string, string]>;
  /** System paths covered with an empty tmpfs when they exist (after the binds). */
  hide: string[];
  /** Paths that must not exist once the mounts are in place (e.g. /run/systemd/system). */
  mustNotExist: string[];
  /** Start Apache (`apache2ctl start`) and wait until HOST:PORT accepts connections. */
  apache?: { host: string; port: number; pidFile: string };
}

const HELPER = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(HELPER), '../..');

/** The argument array that runs `program ...args` under this helper in a new mount namespace. */
export function mountNsCommand(spec: MountNsSpec, program: string, args: readonly string[] = []): string[] {
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--fork',
    '--',
    process.execPath,
    '--import',
    'tsx',
    HELPER,
    JSON.stringify(spec),
    program,
    ...args,
  ];
}

// --- the helper itself (runs inside the namespace) -------------------------------------------

const SAFE = /^\/[A-Za-z0-9._/-]+$/;

function die(message: string): never {
  process.stderr.write(`mount-ns: ${message}\n`);
  process.exit(1);
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${bin} ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`,
      { cause: e },
    );
  }
}

/** Mount points in this namespace, decoded (mountinfo escapes space, tab, newline, backslash). */
function mountPoints(): Array<{ point: string; optional: string }> {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const dash = f.indexOf('-');
      return {
        point: (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
        optional: f.slice(6, dash).join(' '),
      };
    });
}

let overlays = 0;

/**
 * Makes `target` exist without writing to the host: its parent is covered by an overlay whose
 * upper layer is a scratch temp dir, the parent's own submounts are put back on top of it, and
 * the directory is created in the upper layer.
 */
function ensureMountPoint(target: string, scratch: string): void {
  if (existsSync(target)) return;
  const parent = path.dirname(target);
  if (!existsSync(parent)) die(`neither ${target} nor its parent exists`);
  const base = path.join(scratch, `overlay-${overlays++}`);
  const [upper, work, orig] = ['upper', 'work', 'orig'].map((d) => path.join(base, d)) as [
    string,
    string,
    string,
  ];
  for (const d of [upper, work, orig]) mkdirSync(d, { recursive: true });
  const subs = mountPoints()
    .map((m) => m.point)
    .filter((p) => p.startsWith(`${parent}/`))
    .sort();
  const top = subs.filter((p, i) => !subs.slice(0, i).some((q) => p.startsWith(`${q}/`)));
  if (top.length > 0) run('mount', ['--rbind', parent, orig]);
  run('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${parent},upperdir=${upper},workdir=${work}`,
    parent,
  ]);
  for (const p of top) run('mount', ['--rbind', path.join(orig, path.relative(parent, p)), p]);
  mkdirSync(target);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Alive and not a zombie (an orphaned daemon is reaped by PID 1, maybe seconds later). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function pidIn(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

// Debian's apache2ctl hands `start` to `systemctl start apache2` when PID 1 is systemd; this
// variable (what the apache2 unit itself sets) makes it run apache2 directly in the namespace.
const APACHE_ENV = { ...process.env, APACHE_STARTED_BY_SYSTEMD: '1' };

async function startApache(a: NonNullable<MountNsSpec['apache']>): Promise<void> {
  run('apache2ctl', ['start'], APACHE_ENV);
  const deadline = Date.now() + 15_000;
  while (!(await accepts(a.host, a.port))) {
    if (Date.now() > deadline) throw new Error(`Apache does not accept connections on ${a.host}:${a.port}`);
    await sleep(50);
  }
}

async function stopApache(a: NonNullable<MountNsSpec['apache']>): Promise<void> {
  const pid = pidIn(a.pidFile);
  try {
    run('apache2ctl', ['stop'], APACHE_ENV);
  } catch (e) {
    process.stderr.write(`mount-ns: ${(e as Error).message}\n`);
  }
  if (pid === null) return;
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  try {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  } catch {
    /* gone meanwhile */
  }
}

async function main(): Promise<void> {
  const [specText, program, ...args] = process.argv.slice(2);
  if (specText === undefined || program === undefined) die('usage: mount-ns.ts SPEC PROGRAM [ARGS...]');
  const spec = JSON.parse(specText) as MountNsSpec;
  // Never mount where the caller lives, and only with private propagation (nothing reaches the host).
  if (readlinkSync('/proc/self/ns/mnt') === spec.callerNs)
    die('not in a mount namespace of its own: run it under unshare --mount --propagation private');
  const shared = mountPoints().filter((m) => /\bshared:/.test(m.optional));
  if (shared.length > 0) die(`mounts propagate to another namespace: ${shared[0]?.point}`);
  for (const p of [spec.scratch, ...spec.binds.flat(), ...spec.hide])
    if (!SAFE.test(p)) die(`refusing the path ${JSON.stringify(p)}`);

  for (const [, target] of spec.binds) ensureMountPoint(target, spec.scratch);
  for (const [source, target] of spec.binds) run('mount', ['--bind', source, target]);
  for (const p of spec.hide) if (existsSync(p)) run('mount', ['-t', 'tmpfs', '-o', 'mode=755', 'tmpfs', p]);
  for (const p of spec.mustNotExist) if (existsSync(p)) die(`${p} is still visible in the namespace`);

  // Signals before CMD runs end the setup (Apache is stopped all the same); later ones go to CMD.
  let child: ChildProcess | null = null;
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const)
    process.on(sig, () => {
      stopping = true;
      if (child && child.exitCode === null && child.signalCode === null) child.kill(sig);
    });
  let status = 1;
  try {
    if (spec.apache) await startApache(spec.apache);
    if (!stopping) {
      const c = spawn(program, args, { stdio: 'inherit', cwd: ROOT });
      child = c;
      status = await new Promise<number>((resolve) => {
        c.once('error', (e) => {
          process.stderr.write(`mount-ns: cannot run ${program}: ${e.message}\n`);
          resolve(127);
        });
        c.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
      });
    }
  } finally {
    if (spec.apache) await stopApache(spec.apache);
  }
  process.exit(status);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === HELPER) {
  main().catch((e: unknown) => die((e as Error).message));
}
