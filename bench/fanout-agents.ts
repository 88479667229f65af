// Fan-out bench worker: hosts many real agents in one process (agent/main.ts startAgent, each with
// its own port, certificate and sandbox dir). Started by bench/fleet.ts inside a mount namespace
// where the service programs are hidden, so every agent is a "system module only" host. With
// `connect` in the spec the agents are in reverse mode: each dials that URL, none listens.
//   node --import tsx bench/fanout-agents.ts SPEC.json → prints {"ready":[{hostId,port}…]}
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { loadAgentConfig } from '../agent/config.ts';
import { startAgent, type RunningAgent } from '../agent/main.ts';

interface Spec {
  caFile: string;
  baseDir: string;
  agents: Array<{ hostId: string; certFile: string; keyFile: string }>;
  connect?: string;
}

const spec = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as Spec;
const logger = pino({ level: 'silent' });
const running: RunningAgent[] = [];
const ready: Array<{ hostId: string; port: number }> = [];
for (const a of spec.agents) {
  const cfg = loadAgentConfig(
    {
      listen: '127.0.0.1:0',
      cert: a.certFile,
      key: a.keyFile,
      ca: spec.caFile,
      sandbox: path.join(spec.baseDir, a.hostId),
      ...(spec.connect ? { connect: spec.connect } : {}),
    },
    {},
  );
  const agent = await startAgent(cfg, logger);
  running.push(agent);
  ready.push({ hostId: a.hostId, port: agent.port });
}
process.stdout.write(`${JSON.stringify({ ready, rss: process.memoryUsage().rss })}\n`);

const stop = (): void => {
  void Promise.allSettled(running.map((a) => a.stop())).then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
