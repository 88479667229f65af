import { AggregatorRegistry, type Registry } from 'prom-client';
import type { ReplyData } from '../../shared/protocol/index.ts';
import type { ConnectionManager } from '../hosts/connection-manager.ts';

type AgentReport = ReplyData<'agent metrics'>;

/** What the panel learnt from one agent at a scrape. */
export interface AgentScrape {
  hostId: string;
  /** null when the host is not online or did not answer in time. */
  report: AgentReport | null;
}

/**
 * Asks every online host for its `agent metrics` over the link (in parallel, each bounded by
 * `timeoutMs`). A host that is offline or slow is simply absent from this scrape.
 */
export async function scrapeAgents(manager: ConnectionManager, timeoutMs: number): Promise<AgentScrape[]> {
  const online = manager.statuses().filter((s) => s.state === 'online');
  return Promise.all(
    online.map(async ({ id }): Promise<AgentScrape> => {
      const r = await manager.call(id, 'agent metrics', {}, { timeoutMs });
      return { hostId: id, report: r.ok ? r.data : null };
    }),
  );
}

/**
 * The agents' metric families in one registry, each sample with the `host` label of the agent
 * it came from (set last: an agent cannot pick another host's label). Built with prom-client's
 * own aggregation (the one it uses for cluster workers); as every series carries its host, none
 * is merged with another host's.
 */
export function agentRegistry(scrapes: readonly AgentScrape[]): Registry {
  const perHost = scrapes.flatMap(({ hostId, report }) =>
    report
      ? [
          report.metrics.map((f) => ({
            ...f,
            aggregator: 'sum',
            values: f.values.map((v) => ({ ...v, labels: { ...v.labels, host: hostId } })),
          })),
        ]
      : [],
  );
  return AggregatorRegistry.aggregate(perHost);
}
