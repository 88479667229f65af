import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DIAL_BACKOFF, REDIAL_SPREAD_MS, backoffDelay, redialDelay } from '../../agent/dialer.ts';

test('agent dial-out backoff: exponential from 0.5 s, jittered ×0.5–1.5, never above 30 s', () => {
  const low = (): number => 0;
  const high = (): number => 0.999999;
  assert.equal(backoffDelay(1, DIAL_BACKOFF, low), 250);
  assert.equal(backoffDelay(1, DIAL_BACKOFF, high), 750);
  assert.equal(backoffDelay(2, DIAL_BACKOFF, low), 500);
  assert.equal(backoffDelay(4, DIAL_BACKOFF, low), 2000);
  // The cap holds with the largest jitter, for any number of rounds.
  for (const round of [7, 8, 20, 1000]) assert.ok(backoffDelay(round, DIAL_BACKOFF, high) <= 30_000);
  assert.equal(backoffDelay(1000, DIAL_BACKOFF, low), 15_000);
  // Jitter spreads agents that failed together (e.g. after a panel restart).
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(3, DIAL_BACKOFF)));
  assert.ok(spread.size > 10, `jittered: ${spread.size} distinct delays`);
  for (const d of spread) assert.ok(d >= 1000 && d <= 3000);
});

test('a lost link is re-dialed after a spread delay: uniform in [0, 3 s], never outside', () => {
  assert.equal(
    redialDelay(REDIAL_SPREAD_MS, () => 0),
    0,
  );
  assert.equal(
    redialDelay(REDIAL_SPREAD_MS, () => 0.999999),
    3000,
  );
  assert.equal(
    redialDelay(REDIAL_SPREAD_MS, () => 0.5),
    1500,
  );
  // A misbehaving random source cannot push it outside the bound.
  assert.equal(
    redialDelay(REDIAL_SPREAD_MS, () => 7),
    3000,
  );
  assert.equal(
    redialDelay(REDIAL_SPREAD_MS, () => -1),
    0,
  );
  // A thousand agents whose links ended together come back spread over the window.
  const delays = Array.from({ length: 1000 }, () => redialDelay(REDIAL_SPREAD_MS));
  for (const d of delays) assert.ok(d >= 0 && d <= REDIAL_SPREAD_MS);
  const perSecond = [0, 0, 0, 0];
  for (const d of delays) perSecond[Math.min(2, Math.floor(d / 1000))]! += 1;
  for (const n of perSecond.slice(0, 3)) assert.ok(n > 200 && n < 470, `per second: ${perSecond.join(', ')}`);
});
