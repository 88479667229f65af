import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';

/** A debug-level logger whose JSON lines the test reads. */
function capture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return {
    logger: pino({ level: 'debug' }, stream),
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const panelLog = capture();
const agentLog = capture();
let tp: TestPanel;

before(async () => {
  tp = await startTestPanel({ logLevel: 'debug' }, { logger: panelLog.logger });
  await tp.addSandboxHost('web1', {
    modules: { websites: false, ftp: false, mysql: false, firewall: false },
    logger: agentLog.logger,
  });
});

after(async () => {
  await tp?.close();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The ids of the calls of `event` in the panel's log, oldest first. */
const callIds = (event: string): string[] =>
  panelLog
    .lines()
    .filter((l) => l.msg === 'rpc call' && l.event === event)
    .map((l) => String(l.requestId));

test("every panel log line of a call carries the call's id, and the agent's line for it carries the same", async () => {
  assert.equal((await tp.request('GET', '/api/v1/hosts/web1/system')).status, 200);
  // The websites module is off on this host: a failed call, logged at info on both sides.
  assert.equal((await tp.request('GET', '/api/v1/hosts/web1/websites')).status, 501);
  const ok = callIds('system info');
  const failed = callIds('list websites');
  assert.equal(ok.length, 1);
  assert.equal(failed.length, 1);
  for (const [id, outcome] of [
    [ok[0], 'rpc ok'],
    [failed[0], 'rpc failed'],
  ] as const) {
    assert.match(id ?? '', UUID);
    // One grep for the id: the panel's lines (sent, answered) and the agent's line for the call.
    const inPanel = panelLog.lines().filter((l) => JSON.stringify(l).includes(id ?? '-'));
    const inAgent = agentLog.lines().filter((l) => JSON.stringify(l).includes(id ?? '-'));
    assert.deepEqual(
      inPanel.map((l) => l.msg),
      ['rpc call', outcome],
    );
    assert.deepEqual(
      inAgent.map((l) => l.msg),
      [outcome],
    );
    assert.equal(inAgent[0]?.requestId, id);
  }
  // No panel line about a call lacks its id.
  const callLines = panelLog.lines().filter((l) => typeof l.msg === 'string' && /^rpc /.test(l.msg));
  assert.ok(callLines.length >= 4);
  for (const l of callLines) assert.match(String(l.requestId), UUID, JSON.stringify(l));
});

test("a mutation's requestId is its call id on both sides", async () => {
  const requestId = '0b6c8f0e-8f5e-4c1e-9c59-0d6f3f6f2a11';
  const actor = { kind: 'cli', name: 'test', role: 'admin' } as const;
  const r = await tp.panel.ctx.actions.call(actor, 'web1', 'set revocations', { serials: [], requestId });
  assert.ok(r.ok);
  assert.deepEqual(callIds('set revocations'), [requestId]);
  const inAgent = agentLog.lines().filter((l) => l.requestId === requestId);
  assert.ok(inAgent.some((l) => l.msg === 'rpc ok' && l.event === 'set revocations'));
});
