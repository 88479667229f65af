// vs-ssh: what an admin would otherwise do, `ssh host ls <sites dir>` (a new SSH connection per
// call, and again over one multiplexed connection), against `list websites` through PonIO, on
// the same 20 sites of the same sandbox. Our own sshd on a loopback port with throwaway keys.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { findProgram } from '../test/helpers/programs.ts';
import { createSites, sitesDir, startBenchAgent } from './agent.ts';
import { count, latencyStats, round, run, sleep, stopChild, tempDir, type Bench } from './lib.ts';

const SITES = 20;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`sshd did not listen on ${port} within ${timeoutMs} ms`);
}

export const bench: Bench = {
  name: 'vs-ssh',
  async run() {
    const sshd = findProgram('sshd');
    const ssh = findProgram('ssh');
    const keygen = findProgram('ssh-keygen');
    if (!sshd || !ssh || !keygen)
      return [
        {
          bench: 'vs-ssh',
          available: false,
          reason: 'sshd/ssh are not installed (apt-get install openssh-server openssh-client)',
        },
      ];
    const a = await startBenchAgent({ websites: true });
    const dir = tempDir('ssh');
    let daemon: ChildProcess | null = null;
    const privsep = '/run/sshd';
    const madePrivsep = !existsSync(privsep);
    const controlPath = path.join(dir, 'cm.sock');
    let sshArgs: string[] = [];
    try {
      const websites = a.modules.find((m) => m.name === 'websites');
      if (!websites?.available)
        return [
          {
            bench: 'vs-ssh',
            available: false,
            reason: `list websites is not available: ${websites?.reason ?? 'no websites module'}`,
          },
        ];
      await createSites(a, SITES);
      const hostKey = path.join(dir, 'host_ed25519');
      const userKey = path.join(dir, 'user_ed25519');
      await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
      await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', userKey]);
      writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${userKey}.pub`), { mode: 0o600 });
      const port = await freePort();
      const config = path.join(dir, 'sshd_config');
      writeFileSync(
        config,
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${hostKey}`,
          `PidFile ${path.join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'PrintMotd no',
          'MaxStartups 100:30:200',
          '',
        ].join('\n'),
      );
      if (madePrivsep) mkdirSync(privsep, { mode: 0o755 });
      daemon = spawn(sshd, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      daemon.stderr?.resume();
      await waitForPort(port, 10_000);
      const user = process.env.USER && process.env.USER !== '' ? process.env.USER : 'root';
      sshArgs = [
        '-i',
        userKey,
        '-p',
        String(port),
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'BatchMode=yes',
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'LogLevel=ERROR',
      ];
      const target = `${user}@127.0.0.1`;
      const list = ['ls', sitesDir(a)];
      const check = await run(ssh, [...sshArgs, target, ...list]);
      const seen = check.split('\n').filter((l) => l.includes('bench-')).length;
      if (seen !== SITES) throw new Error(`ssh ls listed ${seen} bench sites, expected ${SITES}`);

      const timed = async (n: number, f: () => Promise<unknown>): Promise<bigint[]> => {
        const ns: bigint[] = [];
        for (let i = 0; i < n; i++) {
          const t = process.hrtime.bigint();
          await f();
          ns.push(process.hrtime.bigint() - t);
        }
        return ns;
      };
      const plain = latencyStats(await timed(count(20, 5), () => run(ssh, [...sshArgs, target, ...list])));
      const mux = [
        '-o',
        'ControlMaster=auto',
        '-o',
        `ControlPath=${controlPath}`,
        '-o',
        'ControlPersist=120',
      ];
      await run(ssh, [...sshArgs, ...mux, target, 'true']);
      const muxed = latencyStats(
        await timed(count(50, 5), () => run(ssh, [...sshArgs, ...mux, target, ...list])),
      );
      for (let i = 0; i < 50; i++) await a.manager.call(a.hostId, 'list websites', {});
      const ponio = latencyStats(
        await timed(count(1000, 50), async () => {
          const r = await a.manager.call(a.hostId, 'list websites', {});
          if (!r.ok) throw new Error(`list websites failed: ${r.error.message}`);
        }),
      );
      return [
        { bench: 'vs-ssh', subject: 'ssh host ls (new connection per call)', ...plain },
        { bench: 'vs-ssh', subject: 'ssh host ls (multiplexed connection)', ...muxed },
        {
          bench: 'vs-ssh',
          subject: `PonIO list websites (${SITES} sites)`,
          ...ponio,
          ssh_p50_over_ponio_p50: round(plain.p50_us / ponio.p50_us, 1),
          ssh_mux_p50_over_ponio_p50: round(muxed.p50_us / ponio.p50_us, 1),
        },
      ];
    } finally {
      if (sshArgs.length > 0)
        await run(ssh, [...sshArgs, '-o', `ControlPath=${controlPath}`, '-O', 'exit', 'x@127.0.0.1']).catch(
          () => undefined,
        );
      if (daemon) await stopChild(daemon);
      if (madePrivsep) {
        try {
          rmdirSync(privsep);
        } catch {
          /* sshd may have put something there; leave it */
        }
      }
      await a.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
