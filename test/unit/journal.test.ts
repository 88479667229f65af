// The agent's call journal (agent/journal) under the router, on real files in a temp directory:
// requestId records survive a restart (a new Router + Journal on the same directory), reuse with
// other parameters is refused, unfinished intents are settled by the module's recover(), the
// records are bounded, and deadlines never let a mutation run twice at once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, promises as fsp, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Router } from '../../agent/rpc/router.ts';
import { Journal } from '../../agent/journal/journal.ts';
import type { AgentModule, HandlersOf, Recovered } from '../../agent/modules/types.ts';
import '../../shared/protocol/events/websites.ts';
import { quietLogger } from '../helpers/panel-link.ts';

const meta = { peer: { address: '127.0.0.1', port: 1, localPort: 2 }, emit: () => undefined };
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'ponio-journal-'));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});

const site = (domain: string) => ({
  domain,
  aliases: [],
  enabled: true,
  managed: true,
  docroot: '/x',
  adminEmail: null,
});

function websites(
  handlers: Partial<HandlersOf<'websites'>>,
  recover?: (event: string, intent: unknown) => Promise<Recovered>,
): AgentModule<'websites'> {
  return {
    name: 'websites',
    availability: () => ({ available: true }),
    handlers: handlers as HandlersOf<'websites'>,
    ...(recover ? { recover } : {}),
  };
}

async function router(
  dir: string,
  mod: AgentModule<'websites'>,
  scale = 1,
): Promise<{ r: Router; journal: Journal }> {
  const journal = new Journal(dir);
  const unfinished = await journal.open();
  const r = new Router(quietLogger, scale, undefined, journal);
  r.addModule(mod);
  await r.recover(unfinished);
  return { r, journal };
}

test('a retry after a restart gets the recorded reply; other parameters are refused and change nothing', async () => {
  const dir = tmp();
  const created: string[] = [];
  const mod = websites({
    'create website': (req, ctx) =>
      ctx.intent({ domain: req.domain }).then(() => (created.push(req.domain), site(req.domain))),
    'delete website': (req) => (
      created.push(`deleted ${req.domain}`),
      Promise.resolve({ domain: req.domain, filesRemoved: false })
    ),
  });
  const requestId = randomUUID();
  const first = (await router(dir, mod)).r;
  const a = await first.dispatch('create website', { domain: 'a.example', requestId }, meta);
  assert.ok(a.ok);
  // "Restart": a new journal and router on the same state directory.
  const second = (await router(dir, mod)).r;
  const again = await second.dispatch(
    'create website',
    { domain: 'a.example', requestId, deadlineMs: 5000 },
    meta,
  );
  assert.deepEqual(again, a, 'the same reply (the deadline is not a parameter)');
  const other = await second.dispatch('create website', { domain: 'b.example', requestId }, meta);
  assert.equal(!other.ok && other.error.code, 'invalid-argument');
  assert.match(!other.ok ? other.error.message : '', /already used for this event with other parameters/);
  const otherEvent = await second.dispatch('delete website', { domain: 'a.example', requestId }, meta);
  assert.equal(!otherEvent.ok && otherEvent.error.code, 'invalid-argument');
  assert.deepEqual(created, ['a.example'], 'the handler ran once, never for the refused calls');
  // The same holds in memory, before any restart.
  const inMemory = await first.dispatch('create website', { domain: 'b.example', requestId }, meta);
  assert.equal(!inMemory.ok && inMemory.error.code, 'invalid-argument');
  // A refused re-use never stands for the requestId: the real retry still gets its reply.
  assert.deepEqual(await second.dispatch('create website', { domain: 'a.example', requestId }, meta), a);
  const third = (await router(dir, mod)).r;
  const refusedFirst = await third.dispatch('create website', { domain: 'b.example', requestId }, meta);
  assert.equal(!refusedFirst.ok && refusedFirst.error.code, 'invalid-argument');
  assert.deepEqual(await third.dispatch('create website', { domain: 'a.example', requestId }, meta), a);
  assert.deepEqual(created, ['a.example']);
});

test('an unfinished intent is settled at start: applied gives the reply, absent lets a retry run afresh', async () => {
  const dir = tmp();
  const requestId = randomUUID();
  const other = randomUUID();
  // A "killed" agent: records begun and noted, never finished.
  const journal = new Journal(dir);
  await journal.open();
  const r0 = new Router(quietLogger, 1, undefined, journal);
  r0.addModule(
    websites({
      'create website': (req, ctx) =>
        ctx.intent({ domain: req.domain }).then(() => new Promise<never>(() => undefined)),
    }),
  );
  void r0.dispatch('create website', { domain: 'a.example', requestId, deadlineMs: 200 }, meta);
  await new Promise((res) => setTimeout(res, 100));
  const r1 = new Router(quietLogger, 1, undefined, journal);
  r1.addModule(
    websites({
      'enable website': (req, ctx) =>
        ctx.intent({ domain: req.domain }).then(() => new Promise<never>(() => undefined)),
    }),
  );
  void r1.dispatch('enable website', { domain: 'b.example', requestId: other, deadlineMs: 200 }, meta);
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(readdirSync(journal.dir).filter((n) => n.endsWith('.json')).length, 2, 'two running records');

  const seen: unknown[] = [];
  let ran = 0;
  const { r } = await router(
    dir,
    websites(
      {
        'enable website': (req) => (ran++, Promise.resolve(site(req.domain))),
        'create website': () => Promise.reject(new Error('must not run again')),
      },
      (event, intent) => {
        seen.push([event, intent]);
        return Promise.resolve(
          event === 'create website'
            ? { outcome: 'applied', data: site('a.example') }
            : { outcome: 'absent' },
        );
      },
    ),
  );
  assert.deepEqual(seen, [
    ['create website', { domain: 'a.example' }],
    ['enable website', { domain: 'b.example' }],
  ]);
  assert.deepEqual(await r.dispatch('create website', { domain: 'a.example', requestId }, meta), {
    ok: true,
    data: site('a.example'),
  });
  assert.deepEqual(await r.outcome(requestId), {
    state: 'done',
    event: 'create website',
    reply: { ok: true, data: site('a.example') },
  });
  assert.deepEqual(await r.outcome(other), { state: 'absent', event: 'enable website' });
  const retried = await r.dispatch('enable website', { domain: 'b.example', requestId: other }, meta);
  assert.ok(retried.ok, 'an undone change runs again on retry');
  assert.equal(ran, 1);
});

test('finished records are bounded in number', async () => {
  const dir = tmp();
  const journal = new Journal(dir, { maxRecords: 3, maxAgeMs: 60_000 });
  await journal.open();
  const r = new Router(quietLogger, 1, undefined, journal);
  r.addModule(websites({ 'create website': (req) => Promise.resolve(site(req.domain)) }));
  const ids = Array.from({ length: 6 }, () => randomUUID());
  for (const [i, requestId] of ids.entries())
    await r.dispatch('create website', { domain: `s${i}.example`, requestId }, meta);
  const kept = readdirSync(journal.dir).filter((n) => n.endsWith('.json'));
  assert.ok(kept.length <= 4, `${kept.length} records kept`);
  assert.equal((await journal.lookup(ids[0] ?? '')) === null, true, 'the oldest is gone');
  assert.ok(await journal.lookup(ids[5] ?? ''), 'the newest is kept');
});

test('deadlines: a queued call past its deadline never runs; a hung one holds the lock and the module is stuck', async () => {
  const dir = tmp();
  let release!: () => void;
  let running = 0;
  let maxRunning = 0;
  const started: string[] = [];
  const { r } = await router(
    dir,
    websites(
      {
        'create website': async (req, ctx) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          started.push(req.domain);
          await ctx.intent({ domain: req.domain });
          if (req.domain === 'hung.example') await new Promise<void>((res) => (release = res));
          running--;
          return site(req.domain);
        },
      },
      () => Promise.resolve({ outcome: 'absent' }),
    ),
  );
  const hungId = randomUUID();
  const hung = r.dispatch(
    'create website',
    { domain: 'hung.example', requestId: hungId, deadlineMs: 1500 },
    meta,
  );
  const queued = r.dispatch('create website', { domain: 'queued.example', deadlineMs: 500 }, meta);
  const h = await hung;
  assert.equal(!h.ok && h.error.code, 'timeout');
  assert.deepEqual(
    !h.ok && h.error.details,
    { outcome: 'unknown' },
    'it had recorded its intent: outcome unknown',
  );
  const q = await queued;
  assert.equal(!q.ok && q.error.code, 'timeout');
  assert.deepEqual(!q.ok && q.error.details, { outcome: 'absent' }, 'it never started');
  const stuck = await r.dispatch('create website', { domain: 'next.example' }, meta);
  assert.equal(!stuck.ok && stuck.error.code, 'unavailable');
  assert.match(
    !stuck.ok ? stuck.error.message : '',
    /websites is stuck: "create website" started .* has not finished/,
  );
  assert.deepEqual(await r.outcome(hungId), { state: 'running', event: 'create website' });
  release();
  // Its result is recorded once the journal's write is done (bounded wait on a loaded machine).
  for (let i = 0; i < 100 && (await r.outcome(hungId)).state === 'running'; i++)
    await new Promise((res) => setTimeout(res, 50));
  assert.deepEqual(started, ['hung.example'], 'nothing ran beside or after the hung call while it was stuck');
  assert.equal(maxRunning, 1);
  const out = await r.outcome(hungId);
  assert.equal(out.state, 'done', 'its real result is recorded for the panel to resolve');
  const later = await r.dispatch('create website', { domain: 'next.example' }, meta);
  assert.ok(later.ok, 'the module works again once the hung call ended');
});
