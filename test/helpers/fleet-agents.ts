// Test worker: many real agents (agent/main.ts startAgent, system module only, each with its own
// port, certificate and sandbox dir) in one process, instrumented from the agents' side: every
// RPC the agents dispatch is recorded (host, event, start, end) and the number in flight at once
// across all of them is tracked, so a test can check a job's window where the calls arrive.
// Fault injection (per IPC message): `delayMs` before each call, `failHosts` answer
// failed-precondition. Started by test/helpers/fleet.ts:
//   node --import tsx test/helpers/fleet-agents.ts SPEC.json   (IPC channel required)
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { Router } from '../../agent/rpc/router.ts';

interface Spec {
  caFile: string;
  baseDir: string;
  agents: Array<{ hostId: string; certFile: string; keyFile: string }>;
}
interface Call {
  hostId: string;
  event: string;
  start: number;
  end: number;
}

const spec = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as Spec;
const logger = pino({ level: 'silent' });
const hostOf = new WeakMap<Router, string>();
let current = '';
let inFlight = 0;
let maxInFlight = 0;
let calls: Call[] = [];
let delayMs = 0;
let failHosts = new Set<string>();

// eslint-disable-next-line @typescript-eslint/unbound-method -- wrapped and called with .call(this)
const addModule = Router.prototype.addModule;
Router.prototype.addModule = function (this: Router, mod) {
  if (!hostOf.has(this)) hostOf.set(this, current);
  addModule.call(this, mod);
};
// eslint-disable-next-line @typescript-eslint/unbound-method -- wrapped and called with .call(this)
const dispatch = Router.prototype.dispatch;
Router.prototype.dispatch = async function (this: Router, event, params, meta) {
  const hostId = hostOf.get(this) ?? '?';
  const start = performance.timeOrigin + performance.now();
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  try {
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (failHosts.has(hostId))
      return { ok: false, error: { code: 'failed-precondition', message: `injected failure on ${hostId}` } };
    return await dispatch.call(this, event, params, meta);
  } finally {
    inFlight--;
    calls.push({ hostId, event: String(event), start, end: performance.timeOrigin + performance.now() });
  }
};

const running: RunningAgent[] = [];
const ready: Array<{ hostId: string; port: number }> = [];
for (const a of spec.agents) {
  const dir = path.join(spec.baseDir, a.hostId);
  mkdirSync(dir, { recursive: true });
  const cfgFile = path.join(dir, 'config.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      listen: '127.0.0.1:0',
      cert: a.certFile,
      key: a.keyFile,
      ca: spec.caFile,
      sandbox: dir,
      modules: { websites: false, ftp: false, mysql: false, firewall: false },
    }),
  );
  current = a.hostId;
  const agent = await startAgent(loadAgentConfig({ config: cfgFile }, {}), logger);
  running.push(agent);
  ready.push({ hostId: a.hostId, port: agent.port });
}

process.on('message', (raw) => {
  const m = raw as { op: string; delayMs?: number; failHosts?: string[] };
  if (m.op === 'set') {
    if (m.delayMs !== undefined) delayMs = m.delayMs;
    if (m.failHosts !== undefined) failHosts = new Set(m.failHosts);
    process.send?.({ ok: true });
  } else if (m.op === 'stats') {
    process.send?.({ maxInFlight, inFlight, calls });
  } else if (m.op === 'reset') {
    maxInFlight = inFlight;
    calls = [];
    process.send?.({ ok: true });
  }
});
process.send?.({ ready });

const stop = (): void => {
  void Promise.allSettled(running.map((a) => a.stop())).then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('disconnect', stop);
