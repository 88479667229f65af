import os from 'node:os';
import { promises as fsp } from 'node:fs';
import type { ReplyData } from '../../../shared/protocol/index.ts';
import { whichBinary, type Exec, type Binary } from '../../os/exec.ts';

type Info = ReplyData<'system info'>;

export function parseOsRelease(text: string): Info['os'] {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (!m?.[1] || m[2] === undefined) continue;
    let v = m[2];
    if (/^".*"$/.test(v) || /^'.*'$/.test(v)) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    kv.set(m[1], v);
  }
  return {
    id: kv.get('ID') ?? 'linux',
    name: kv.get('NAME') ?? 'Linux',
    version: kv.get('VERSION_ID') ?? '',
    pretty: kv.get('PRETTY_NAME') ?? kv.get('NAME') ?? 'Linux',
  };
}

export function parseMeminfo(text: string): Info['memory'] {
  const get = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  };
  return { totalBytes: get('MemTotal'), availableBytes: get('MemAvailable'), freeBytes: get('MemFree') };
}

const PSEUDO_FS = new Set([
  'proc',
  'sysfs',
  'devtmpfs',
  'devpts',
  'tmpfs',
  'cgroup',
  'cgroup2',
  'securityfs',
  'pstore',
  'bpf',
  'debugfs',
  'tracefs',
  'mqueue',
  'hugetlbfs',
  'configfs',
  'fusectl',
  'autofs',
  'binfmt_misc',
  'nsfs',
  'rpc_pipefs',
  'ramfs',
  'squashfs',
  'efivarfs',
  'fuse.lxcfs',
  'overlay',
  'shm',
  'nfsd',
]);

/** Real filesystems from /proc/self/mounts, measured with statfs (no program needed). */
export async function readDisks(mountsText: string): Promise<Info['disks']> {
  const seen = new Set<string>();
  const disks: Info['disks'] = [];
  for (const line of mountsText.split('\n')) {
    const [dev, mnt, type] = line.split(' ');
    if (!dev || !mnt || !type) continue;
    const mount = mnt.replace(/\\040/g, ' ');
    if (PSEUDO_FS.has(type) && mount !== '/') continue;
    if (seen.has(dev) && mount !== '/') continue;
    seen.add(dev);
    try {
      const s = await fsp.statfs(mount);
      const size = s.blocks * s.bsize;
      if (size === 0) continue;
      disks.push({
        mount,
        filesystem: dev,
        type,
        sizeBytes: size,
        usedBytes: (s.blocks - s.bfree) * s.bsize,
        availableBytes: s.bavail * s.bsize,
      });
    } catch {
      /* unreadable mount: skip */
    }
    if (disks.length >= 50) break;
  }
  return disks;
}

const SERVICES: { name: string; binary: Binary; process: string[] }[] = [
  { name: 'apache2', binary: 'apache2', process: ['apache2'] },
  { name: 'proftpd', binary: 'proftpd', process: ['proftpd'] },
  { name: 'mariadb', binary: 'mariadbd', process: ['mariadbd', 'mysqld'] },
];

async function runningProcesses(): Promise<Set<string>> {
  const names = new Set<string>();
  const entries = await fsp.readdir('/proc').catch(() => [] as string[]);
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (pid) => {
        const comm = await fsp.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
        if (comm) names.add(comm.trim());
      }),
  );
  return names;
}

export async function serviceStates(exec: Exec): Promise<Info['services']> {
  const systemd = await fsp
    .stat('/run/systemd/system')
    .then(() => true)
    .catch(() => false);
  const procs = systemd ? null : await runningProcesses();
  return Promise.all(
    SERVICES.map(async (svc): Promise<Info['services'][number]> => {
      if (!whichBinary(svc.binary)) return { name: svc.name, state: 'missing' };
      if (procs)
        return { name: svc.name, state: svc.process.some((p) => procs.has(p)) ? 'running' : 'stopped' };
      try {
        const r = await exec('systemctl', ['is-active', svc.name], { timeoutMs: 5000 });
        return { name: svc.name, state: r.stdout.trim() === 'active' ? 'running' : 'stopped' };
      } catch {
        return { name: svc.name, state: 'unknown' };
      }
    }),
  );
}

export async function systemInfo(exec: Exec): Promise<Info> {
  const [osRelease, meminfo, mounts, services] = await Promise.all([
    fsp.readFile('/etc/os-release', 'utf8').catch(() => ''),
    fsp.readFile('/proc/meminfo', 'utf8').catch(() => ''),
    fsp.readFile('/proc/self/mounts', 'utf8').catch(() => ''),
    serviceStates(exec),
  ]);
  const [l1 = 0, l5 = 0, l15 = 0] = os.loadavg();
  const memory = meminfo
    ? parseMeminfo(meminfo)
    : { totalBytes: os.totalmem(), availableBytes: os.freemem(), freeBytes: os.freemem() };
  return {
    hostname: os.hostname(),
    os: parseOsRelease(osRelease),
    kernel: os.release(),
    arch: os.arch(),
    uptimeSeconds: Math.round(os.uptime()),
    load: [l1, l5, l15],
    cpus: os.cpus().length,
    memory,
    disks: await readDisks(mounts),
    services,
  };
}
