// The panel side of the fleet benches (runs inside the panel worker processes): an agent
// listener for reverse-mode fleets, and waiting until every host of a fleet is online.
import type { Logger } from 'pino';
import { startAgentListener, type AgentListener } from '../server/hosts/agent-listener.ts';
import {
  WAITING_FOR_AGENT,
  type ConnectionManager,
  type HostStatus,
  type PanelTls,
} from '../server/hosts/connection-manager.ts';

/** The panel's agent listener on a free loopback port (reverse-mode fleets dial it). */
export function listenForAgents(
  manager: ConnectionManager,
  tls: PanelTls,
  logger: Logger,
): Promise<AgentListener> {
  return startAgentListener({
    host: '127.0.0.1',
    port: 0,
    tls: () => tls,
    revoked: () => new Set(),
    manager,
    logger,
  });
}

/**
 * Resolves when every one of `ids` is online (connect time, and how often a host went offline
 * or was refused on the way); rejects after `timeoutMs`. Call before adding the hosts.
 */
export function allOnline(
  manager: ConnectionManager,
  ids: readonly string[],
  timeoutMs = 180_000,
): Promise<{ connectMs: number; connectFailures: number }> {
  const t0 = process.hrtime.bigint();
  const want = new Set(ids);
  const online = new Set<string>();
  let connectFailures = 0;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (online.size !== want.size) return;
      clearTimeout(timer);
      manager.off('state', onState);
      resolve({ connectMs: Number(process.hrtime.bigint() - t0) / 1e6, connectFailures });
    };
    const onState = (s: HostStatus): void => {
      if (!want.has(s.id)) return;
      if (s.state === 'online') online.add(s.id);
      else online.delete(s.id);
      // A reverse host starts 'offline' (waiting for its agent): not a failure.
      if ((s.state === 'offline' && s.lastError !== WAITING_FOR_AGENT) || s.state === 'refused')
        connectFailures++;
      check();
    };
    const timer = setTimeout(() => {
      manager.off('state', onState);
      reject(new Error(`only ${online.size} of ${want.size} agents online after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    manager.setMaxListeners(0);
    manager.on('state', onState);
    for (const s of manager.statuses()) if (want.has(s.id) && s.state === 'online') online.add(s.id);
    check();
  });
}
