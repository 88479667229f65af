// The supervisor's restart policy (agent/os/supervisor.ts) with a recording restart function and
// short delays: backoff doubles, the bound is enforced, a failed restart counts, stop() ends it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Supervisor } from '../../agent/os/supervisor.ts';

const logger = pino({ level: 'silent' });
const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('restarts with doubling delays, then gives up past the bound', async () => {
  const at: number[] = [];
  const t0 = Date.now();
  const s = new Supervisor({
    service: 'x',
    logger,
    restart: () => {
      at.push(Date.now() - t0);
      return Promise.resolve();
    },
    maxRestarts: 2,
    firstDelayMs: 20,
    maxDelayMs: 1000,
  });
  s.crashed('boom 1');
  assert.equal(s.status().state, 'restarting');
  await settle(60);
  assert.deepEqual([s.status().state, s.status().restarts], ['running', 1]);
  s.crashed('boom 2');
  await settle(100);
  assert.deepEqual([s.status().state, s.status().restarts], ['running', 2]);
  assert.ok((at[1] ?? 0) - (at[0] ?? 0) >= 40, `second delay doubled: ${JSON.stringify(at)}`);
  s.crashed('boom 3');
  assert.equal(s.status().state, 'failed');
  assert.match(
    s.status().detail ?? '',
    /^x died 3 times within 10 min and is no longer restarted \(last: boom 3\)/,
  );
  await settle(60);
  assert.equal(at.length, 2, 'no restart after giving up');
  s.recovered();
  assert.equal(s.status().state, 'running', 'a change that started it again clears the alarm');
});

test('a failed restart counts as an attempt; stop() cancels a pending restart', async () => {
  let calls = 0;
  const s = new Supervisor({
    service: 'y',
    logger,
    restart: () => {
      calls++;
      return Promise.reject(new Error('port taken'));
    },
    maxRestarts: 2,
    firstDelayMs: 10,
  });
  s.crashed('boom');
  await settle(120);
  assert.equal(calls, 2);
  assert.equal(s.status().state, 'failed');
  assert.match(s.status().detail ?? '', /restart failed: port taken/);

  let later = 0;
  const t = new Supervisor({
    service: 'z',
    logger,
    restart: () => Promise.resolve(void later++),
    firstDelayMs: 30,
  });
  t.crashed('boom');
  t.stop();
  await settle(60);
  assert.equal(later, 0);
  assert.equal(t.status().state, 'stopped');
});
