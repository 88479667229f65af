import type { HostRow } from '../db/hosts.ts';

/**
 * What the host's admin does after a mode switch (CLI, REST and dashboard say the same). The
 * certificate stays valid in both directions, so the agent's config changes and it restarts;
 * re-enrolling with the new token (`ponio-agent enroll --force …`) rewrites that config instead.
 */
export function modeSwitchSteps(host: HostRow, agentUrl: string | null, enrollCommand: string): string[] {
  const config = '/etc/ponio-agent/config.json';
  if (host.mode === 'reverse')
    return [
      agentUrl
        ? `On ${host.name}, set "connect": ["${agentUrl}"] in ${config} (and remove "listen"), then run: systemctl restart ponio-agent. The agent then dials the panel and opens no port.`
        : `The panel's agent listener is off (--agent-listen off): turn it on, or ${host.name} has nothing to dial.`,
      `Or re-enroll it, which writes that config: ${enrollCommand}`,
    ];
  return [
    `On ${host.name}, remove "connect" from ${config} (the agent then listens on 0.0.0.0:${host.port}; set "listen" for another address), let the panel reach ${host.address}:${host.port}, then run: systemctl restart ponio-agent.`,
    `Or re-enroll it, which writes that config: ${enrollCommand}`,
  ];
}

/** The wss:// URL agents dial for a panel config (the CLI has no running listener to ask). */
export function configuredAgentUrl(cfg: {
  agentListen: string;
  agentPublicUrl?: string | undefined;
  publicUrl: string;
}): string | null {
  if (cfg.agentPublicUrl) return cfg.agentPublicUrl;
  if (cfg.agentListen === 'off') return null;
  const port = cfg.agentListen.slice(cfg.agentListen.lastIndexOf(':') + 1);
  return `wss://${new URL(cfg.publicUrl).host.replace(/:\d+$/, '')}:${port}`;
}
