import path from 'node:path';

export type HostMode = 'system' | 'sandbox';

/**
 * Where things are on this host. Modules ask the layout (or their service adapter, which is
 * built from it) for paths; they never hard-code them (design §6).
 */
export interface HostLayout {
  mode: HostMode;
  /** `/` in system mode, the sandbox directory in sandbox mode. */
  root: string;
  /** Agent config (certificates, config.json): /etc/ponio-agent or <sandbox>/etc/ponio-agent. */
  configDir: string;
  /** Agent state (firewall rules, request cache…): /var/lib/ponio-agent or <sandbox>/var/lib/ponio-agent. */
  stateDir: string;
  /** Website trees: /var/www or <sandbox>/var/www. */
  wwwRoot: string;
  /** Runtime files (pids, sockets): /run/ponio-agent or <sandbox>/run. */
  runDir: string;
  /** Logs of sandbox service instances. */
  logDir: string;
}

export function systemLayout(): HostLayout {
  return {
    mode: 'system',
    root: '/',
    configDir: '/etc/ponio-agent',
    stateDir: '/var/lib/ponio-agent',
    wwwRoot: '/var/www',
    runDir: '/run/ponio-agent',
    logDir: '/var/log/ponio-agent',
  };
}

export function sandboxLayout(dir: string): HostLayout {
  const root = path.resolve(dir);
  return {
    mode: 'sandbox',
    root,
    configDir: path.join(root, 'etc/ponio-agent'),
    stateDir: path.join(root, 'var/lib/ponio-agent'),
    wwwRoot: path.join(root, 'var/www'),
    runDir: path.join(root, 'run'),
    logDir: path.join(root, 'log'),
  };
}
