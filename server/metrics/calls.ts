import type { Logger } from 'pino';
import type { EventName } from '../../shared/protocol/index.ts';
import { eventLabel, outcomeLabel, type PanelMetrics } from './panel-metrics.ts';

/**
 * Watches each host call HostActions makes (server/http/host-actions.ts): `start` when the call
 * goes out, the returned function with its reply. `callId` is the call's requestId, which the
 * agent logs too, so one grep for it follows the call through both logs.
 */
export interface CallObserver {
  start(hostId: string, event: EventName, callId: string): (reply: CallOutcome) => void;
}

export type CallOutcome = { ok: true } | { ok: false; error: { code: string; message: string } };

export const noCallObserver: CallObserver = { start: () => () => undefined };

/**
 * The panel's call observer: counts and times every call (ponio_rpc_*) and logs it with its id
 * (`debug` when it succeeded, `info` when it failed, like the agent's router).
 */
export function callObserver(metrics: PanelMetrics, logger: Logger): CallObserver {
  return {
    start(hostId, event, callId) {
      const t0 = performance.now();
      metrics.rpcInFlight.inc({ host: hostId });
      if (logger.isLevelEnabled('debug')) logger.debug({ hostId, event, requestId: callId }, 'rpc call');
      return (reply) => {
        const seconds = (performance.now() - t0) / 1000;
        const labels = { event: eventLabel(event), outcome: outcomeLabel(reply) };
        metrics.rpcInFlight.dec({ host: hostId });
        metrics.rpcCalls.inc(labels);
        metrics.rpcDuration.observe(labels, seconds);
        const ms = Math.round(seconds * 1e4) / 10;
        if (reply.ok) logger.debug({ hostId, event, requestId: callId, ms }, 'rpc ok');
        else
          logger.info(
            { hostId, event, requestId: callId, ms, code: reply.error.code, err: reply.error.message },
            'rpc failed',
          );
      };
    },
  };
}
