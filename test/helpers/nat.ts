import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * Three fresh network namespaces, a host behind NAT:
 *
 *   wan (the panel, 10.N.0.1) ── veth ── nat (router: 10.N.0.2 | 192.168.N.1, MASQUERADE) ── veth ── lan (the agent, 192.168.N.2)
 *
 * The router forwards lan → wan with MASQUERADE (the panel sees 10.N.0.2) and drops NEW
 * connections wan → lan; the lan namespace itself drops inbound NEW connections (except on lo).
 * wan has a route to the lan, so "cannot connect" is the NAT and the firewall, not routing.
 * `destroy()` deletes all three (and every interface and rule in them).
 */
export interface NatLab {
  wan: string;
  nat: string;
  lan: string;
  panelIp: string;
  /** The address the panel sees the agent at (after MASQUERADE). */
  natIp: string;
  agentIp: string;
  destroy(): void;
}

export function createNatLab(tag: string): NatLab {
  const id = randomBytes(3).toString('hex');
  const n = 16 + (parseInt(id.slice(0, 2), 16) % 200);
  const lab: NatLab = {
    wan: `ponio-${tag}-${id}-w`,
    nat: `ponio-${tag}-${id}-n`,
    lan: `ponio-${tag}-${id}-l`,
    panelIp: `10.${n}.0.1`,
    natIp: `10.${n}.0.2`,
    agentIp: `192.168.${n}.2`,
    destroy() {
      for (const ns of [lab.wan, lab.nat, lab.lan]) {
        try {
          execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
        } catch {
          /* already gone */
        }
      }
    },
  };
  const run = (cmd: string, ...args: string[]): void => {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const inNs = (ns: string, cmd: string, ...args: string[]): void =>
    run('ip', 'netns', 'exec', ns, cmd, ...args);
  try {
    for (const ns of [lab.wan, lab.nat, lab.lan]) {
      run('ip', 'netns', 'add', ns);
      run('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    }
    run(
      'ip',
      'link',
      'add',
      `w${id}`,
      'netns',
      lab.wan,
      'type',
      'veth',
      'peer',
      'name',
      `nw${id}`,
      'netns',
      lab.nat,
    );
    run(
      'ip',
      'link',
      'add',
      `l${id}`,
      'netns',
      lab.lan,
      'type',
      'veth',
      'peer',
      'name',
      `nl${id}`,
      'netns',
      lab.nat,
    );
    const addr = (ns: string, dev: string, cidr: string): void => {
      run('ip', '-n', ns, 'addr', 'add', cidr, 'dev', dev);
      run('ip', '-n', ns, 'link', 'set', dev, 'up');
    };
    addr(lab.wan, `w${id}`, `${lab.panelIp}/24`);
    addr(lab.nat, `nw${id}`, `${lab.natIp}/24`);
    addr(lab.nat, `nl${id}`, `192.168.${n}.1/24`);
    addr(lab.lan, `l${id}`, `${lab.agentIp}/24`);
    run('ip', '-n', lab.lan, 'route', 'add', 'default', 'via', `192.168.${n}.1`);
    run('ip', '-n', lab.wan, 'route', 'add', `192.168.${n}.0/24`, 'via', lab.natIp);
    inNs(lab.nat, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    inNs(lab.nat, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', `nw${id}`, '-j', 'MASQUERADE');
    inNs(
      lab.nat,
      'iptables',
      '-A',
      'FORWARD',
      '-i',
      `nw${id}`,
      '-m',
      'conntrack',
      '--ctstate',
      'NEW',
      '-j',
      'DROP',
    );
    inNs(lab.lan, 'iptables', '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT');
    inNs(lab.lan, 'iptables', '-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP');
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}
