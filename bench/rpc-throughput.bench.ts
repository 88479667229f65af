// rpc-throughput: concurrent `ping`s with 64 in flight from the panel's connection manager to a
// real bundled agent process; reference: the raw TLS echo with 64 messages in flight.
import { readFileSync } from 'node:fs';
import { connectEcho, startEchoServer } from './echo-client.ts';
import { startBenchAgent } from './agent.ts';
import { count, round, stopChild, type Bench } from './lib.ts';

const IN_FLIGHT = 64;

export const bench: Bench = {
  name: 'rpc-throughput',
  async run() {
    const total = count(30_000, 1_000);
    const a = await startBenchAgent({ websites: false });
    const echo = await startEchoServer(a.agentFiles.certFile, a.agentFiles.keyFile, a.pki.caFile);
    try {
      const client = await connectEcho(echo.port, {
        cert: a.pki.panel.certPem,
        key: a.pki.panel.keyPem,
        ca: readFileSync(a.pki.caFile, 'utf8'),
      });
      const msg = Buffer.alloc(64, 'x');
      let failures = 0;
      const pings = async (n: number): Promise<void> => {
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < n) {
            next++;
            const r = await a.manager.call(a.hostId, 'ping', {});
            if (!r.ok) failures++;
          }
        };
        await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      };
      await pings(2_000); // warm-up
      await client.pipelined(msg, 2_000, IN_FLIGHT);

      let t = process.hrtime.bigint();
      await client.pipelined(msg, total, IN_FLIGHT);
      const echoS = Number(process.hrtime.bigint() - t) / 1e9;
      t = process.hrtime.bigint();
      await pings(total);
      const pingS = Number(process.hrtime.bigint() - t) / 1e9;
      client.close();
      const pingRate = Math.round(total / pingS);
      const echoRate = Math.round(total / echoS);
      return [
        {
          bench: 'rpc-throughput',
          subject: 'raw TLS echo (reference)',
          in_flight: IN_FLIGHT,
          calls: total,
          calls_per_s: echoRate,
        },
        {
          bench: 'rpc-throughput',
          subject: 'ping',
          in_flight: IN_FLIGHT,
          calls: total,
          failures,
          calls_per_s: pingRate,
          vs_tls: round(pingRate / echoRate, 3),
        },
      ];
    } finally {
      await stopChild(echo.proc);
      await a.stop();
    }
  },
};
