// rpc-latency: one call at a time from the panel's connection manager to a real bundled agent
// process over mutual TLS (`ping`, and `list websites` with 20 sites), against a raw TLS echo
// between two processes with the same certificates, and against a bare Socket.IO ack server on
// the same mutual TLS (bench/sio-echo-server.ts) with Socket.IO's default packet parser and with
// PonIO's (shared/protocol/wire-parser.ts) on both ends; and `ping` over a reverse link (a second
// agent that dialed the panel's agent listener), measured in the same interleaved blocks.
// p50/p99 in µs.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { io as ioc, type Socket as ClientSocket } from 'socket.io-client';
import { wireParser } from '../shared/protocol/wire-parser.ts';
import { connectEcho, startEchoServer } from './echo-client.ts';
import { createSites, startBenchAgent, type BenchAgent } from './agent.ts';
import {
  ROOT,
  count,
  latencyStats,
  pinClientAndServers,
  round,
  spawnUntil,
  stopChild,
  type Bench,
  type BenchResult,
} from './lib.ts';

const SITES = 20;

/** The Socket.IO ack reference server (bench/sio-echo-server.ts), default or PonIO's parser. */
async function startSioEcho(a: BenchAgent, wire: boolean): Promise<{ port: number; proc: ChildProcess }> {
  const s = await spawnUntil(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'bench/sio-echo-server.ts'),
      a.agentFiles.certFile,
      a.agentFiles.keyFile,
      a.pki.caFile,
      ...(wire ? ['--wire-parser'] : []),
    ],
    (l) => l.startsWith('listening '),
    { cwd: ROOT },
  );
  return { port: Number(s.line.split(' ')[1]), proc: s.proc };
}

/** A Socket.IO client with the connection manager's transport options and the panel certificate. */
async function connectSio(a: BenchAgent, port: number, wire: boolean): Promise<ClientSocket> {
  const c = ioc(`https://127.0.0.1:${port}`, {
    transports: ['websocket'],
    reconnection: false,
    // As the connection manager; `false` (no extension offered) is not in the client's types.
    perMessageDeflate: false as unknown as { threshold: number },
    ...(wire ? { parser: wireParser } : {}),
    cert: a.pki.panel.certPem,
    key: a.pki.panel.keyPem,
    ca: a.pki.ca.certPem,
    checkServerIdentity: () => undefined,
  } as Parameters<typeof ioc>[1]);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('connect_error', reject);
  });
  return c;
}

export const bench: Bench = {
  name: 'rpc-latency',
  async run() {
    const calls = count(5000, 200);
    const block = Math.min(500, calls);
    const a = await startBenchAgent({ websites: true });
    const rev = await startBenchAgent({ websites: false, reverse: true }).catch(async (e: unknown) => {
      await a.stop();
      throw e;
    });
    const echo = await startEchoServer(a.agentFiles.certFile, a.agentFiles.keyFile, a.pki.caFile);
    const servers: ChildProcess[] = [echo.proc];
    const results: BenchResult[] = [];
    let unpin = (): void => undefined;
    try {
      const sio = await startSioEcho(a, false);
      servers.push(sio.proc);
      const sioWire = await startSioEcho(a, true);
      servers.push(sioWire.proc);
      const sioClient = await connectSio(a, sio.port, false);
      const sioWireClient = await connectSio(a, sioWire.port, true);
      const sioPing = async (): Promise<void> => {
        await sioClient.timeout(5000).emitWithAck('ping', {});
      };
      const sioWirePing = async (): Promise<void> => {
        await sioWireClient.timeout(5000).emitWithAck('ping', {});
      };
      const client = await connectEcho(echo.port, {
        cert: a.pki.panel.certPem,
        key: a.pki.panel.keyPem,
        ca: readFileSync(a.pki.caFile, 'utf8'),
      });
      // Every subject under the same CPU placement (see pinClientAndServers).
      const pinned = pinClientAndServers([
        a.pid,
        rev.pid,
        ...servers.map((proc) => proc.pid ?? 0).filter((p) => p > 0),
      ]);
      unpin = () => pinned.restore();
      const placement = pinned.placement;
      const msg = Buffer.alloc(64, 'x');
      const ping = async (): Promise<void> => {
        const r = await a.manager.call(a.hostId, 'ping', {});
        if (!r.ok) throw new Error(`ping failed: ${r.error.message}`);
      };
      const revPing = async (): Promise<void> => {
        const r = await rev.manager.call(rev.hostId, 'ping', {});
        if (!r.ok) throw new Error(`reverse ping failed: ${r.error.message}`);
      };
      // Warm-up (JIT, TLS session), then alternate blocks so both see the same machine noise.
      for (let i = 0; i < 200; i++) {
        await ping();
        await revPing();
        await client.roundTrip(msg);
        await sioPing();
        await sioWirePing();
      }
      const pingNs: bigint[] = [];
      const echoNs: bigint[] = [];
      const sioNs: bigint[] = [];
      const sioWireNs: bigint[] = [];
      const revNs: bigint[] = [];
      for (let done = 0; done < calls; done += block) {
        for (let i = 0; i < block; i++) {
          const t = process.hrtime.bigint();
          await client.roundTrip(msg);
          echoNs.push(process.hrtime.bigint() - t);
        }
        for (let i = 0; i < block; i++) {
          const t = process.hrtime.bigint();
          await sioPing();
          sioNs.push(process.hrtime.bigint() - t);
        }
        for (let i = 0; i < block; i++) {
          const t = process.hrtime.bigint();
          await sioWirePing();
          sioWireNs.push(process.hrtime.bigint() - t);
        }
        for (let i = 0; i < block; i++) {
          const t = process.hrtime.bigint();
          await ping();
          pingNs.push(process.hrtime.bigint() - t);
        }
        for (let i = 0; i < block; i++) {
          const t = process.hrtime.bigint();
          await revPing();
          revNs.push(process.hrtime.bigint() - t);
        }
      }
      client.close();
      sioClient.close();
      sioWireClient.close();
      const ref = latencyStats(echoNs);
      const p = latencyStats(pingNs);
      results.push({ bench: 'rpc-latency', subject: 'raw TLS echo (reference)', placement, ...ref });
      const transport = latencyStats(sioNs);
      results.push({
        bench: 'rpc-latency',
        subject: 'Socket.IO ack over the same mutual TLS, no PonIO code (reference)',
        ...transport,
        p50_vs_tls: round(transport.p50_us / ref.p50_us, 2),
      });
      const transportWire = latencyStats(sioWireNs);
      results.push({
        bench: 'rpc-latency',
        subject: "Socket.IO ack as above, PonIO's wire parser on both ends (reference)",
        ...transportWire,
        p50_vs_tls: round(transportWire.p50_us / ref.p50_us, 2),
        p50_vs_socketio: round(transportWire.p50_us / transport.p50_us, 2),
      });
      const ratio = round(p.p50_us / ref.p50_us, 2);
      results.push({
        bench: 'rpc-latency',
        subject: 'ping',
        placement,
        ...p,
        p50_vs_tls: ratio,
        p50_vs_socketio: round(p.p50_us / transport.p50_us, 2),
        target: 'p50 <= 2.5x raw TLS, p99 <= 2000 us',
        meets_target: ratio <= 2.5 && p.p99_us <= 2000,
      });
      const r = latencyStats(revNs);
      const revRatio = round(r.p50_us / ref.p50_us, 2);
      results.push({
        bench: 'rpc-latency',
        subject: 'ping over a reverse link (the agent dialed the panel)',
        placement,
        ...r,
        p50_vs_tls: revRatio,
        p50_vs_forward: round(r.p50_us / p.p50_us, 2),
        target: 'p50 <= 2.5x raw TLS, p99 <= 2000 us',
        meets_target: revRatio <= 2.5 && r.p99_us <= 2000,
      });

      const websites = a.modules.find((m) => m.name === 'websites');
      if (!websites?.available) {
        results.push({
          bench: 'rpc-latency',
          subject: `list websites (${SITES} sites)`,
          available: false,
          reason: websites?.reason ?? 'the agent did not announce a websites module',
        });
      } else {
        await createSites(a, SITES);
        const check = await a.manager.call(a.hostId, 'list websites', {});
        if (!check.ok) throw new Error(`list websites failed: ${check.error.message}`);
        const listed = check.data.websites.filter((w) => w.domain.startsWith('bench-')).length;
        if (listed !== SITES)
          throw new Error(`list websites returned ${listed} bench sites, expected ${SITES}`);
        for (let i = 0; i < 100; i++) await a.manager.call(a.hostId, 'list websites', {});
        const ns: bigint[] = [];
        for (let i = 0; i < calls; i++) {
          const t = process.hrtime.bigint();
          const r = await a.manager.call(a.hostId, 'list websites', {});
          ns.push(process.hrtime.bigint() - t);
          if (!r.ok) throw new Error(`list websites failed: ${r.error.message}`);
        }
        const l = latencyStats(ns);
        results.push({
          bench: 'rpc-latency',
          subject: `list websites (${SITES} sites)`,
          ...l,
          p50_vs_tls: round(l.p50_us / ref.p50_us, 2),
        });
      }
      return results;
    } finally {
      unpin();
      for (const proc of servers) await stopChild(proc);
      await rev.stop();
      await a.stop();
    }
  },
};
