import { PONIO_VERSION } from '../../../shared/protocol/version.ts';
// This module's schemas (the router validates its events with them, the trust events too).
import '../../../shared/protocol/events/system.ts';
import { available, type AgentModule, type ModuleContext } from '../types.ts';
import { systemInfo } from './info.ts';
import type { ReplyData } from '../../../shared/protocol/index.ts';
import type { Trust } from '../../trust-handlers.ts';
import type { AgentMetrics } from '../../metrics.ts';

/**
 * `trust`: the renewal/revocation handlers (agent/trust-handlers.ts), which need the server's TLS
 * state; `metrics`: the agent's health and metrics (agent/metrics.ts); `outcome`: the journal's
 * word on a requestId (the router's).
 */
export function createSystemModule(
  ctx: ModuleContext,
  trust: Trust,
  metrics: Pick<AgentMetrics, 'snapshot'>,
  outcome: (requestId: string) => Promise<ReplyData<'call outcome'>>,
): AgentModule<'system'> {
  return {
    name: 'system',
    availability: available,
    handlers: {
      ping: () => Promise.resolve({ pong: true, time: Date.now(), agentVersion: PONIO_VERSION }),
      'system info': () => systemInfo(ctx.exec),
      'agent metrics': () => metrics.snapshot(),
      'call outcome': (req) => outcome(req.id),
      ...trust.handlers,
    },
    // Its only mutations are the trust events.
    recover: (event, intent) => {
      if (event === 'renew certificate' || event === 'install certificate' || event === 'set revocations')
        return trust.recover(event, intent);
      return Promise.reject(new Error(`"${event}" is not a mutation`));
    },
    writesIn: () => trust.writesIn(),
  };
}
