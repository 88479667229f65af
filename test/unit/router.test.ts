import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Router, takesNoParams } from '../../agent/rpc/router.ts';
import { RpcError, rpcEvents } from '../../shared/protocol/index.ts';
import type { AgentModule, HandlersOf } from '../../agent/modules/types.ts';
import { quietLogger } from '../helpers/panel-link.ts';

const meta = { peer: { address: '127.0.0.1', port: 1, localPort: 2 }, emit: () => undefined };

function fakeWebsites(handlers: Partial<HandlersOf<'websites'>>): AgentModule<'websites'> {
  return {
    name: 'websites',
    availability: () => ({ available: true }),
    handlers: handlers as HandlersOf<'websites'>,
  };
}
const site = (domain: string) => ({
  domain,
  aliases: [],
  enabled: true,
  managed: true,
  docroot: '/x',
  adminEmail: null,
});

test('a retried mutation with the same requestId acts once (also while the first still runs)', async () => {
  let calls = 0;
  const r = new Router(quietLogger);
  r.addModule(
    fakeWebsites({
      'create website': async (req) => {
        calls++;
        await new Promise((res) => setTimeout(res, 20));
        return site(req.domain);
      },
      'delete website': (req) => Promise.resolve({ domain: req.domain, filesRemoved: false }),
    }),
  );
  const requestId = randomUUID();
  const [a, b] = await Promise.all([
    r.dispatch('create website', { domain: 'a.example', requestId }, meta),
    r.dispatch('create website', { domain: 'a.example', requestId }, meta),
  ]);
  const c = await r.dispatch('create website', { domain: 'a.example', requestId }, meta);
  assert.equal(calls, 1);
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
  await r.dispatch('create website', { domain: 'a.example', requestId: randomUUID() }, meta);
  assert.equal(calls, 2, 'a new requestId acts again');
  const reused = await r.dispatch('delete website', { domain: 'a.example', requestId }, meta);
  assert.equal(!reused.ok && reused.error.code, 'invalid-argument');
});

test('validation normalises and refuses with a readable message', async () => {
  const seen: string[] = [];
  const r = new Router(quietLogger);
  r.addModule(
    fakeWebsites({ 'create website': (req) => (seen.push(req.domain), Promise.resolve(site(req.domain))) }),
  );
  const ok = await r.dispatch('create website', { domain: 'Bücher.Example' }, meta);
  assert.ok(ok.ok);
  assert.deepEqual(seen, ['xn--bcher-kva.example']);
  const bad = await r.dispatch('create website', { domain: 'test..com' }, meta);
  assert.equal(!bad.ok && bad.error.code, 'invalid-argument');
  assert.match(!bad.ok ? bad.error.message : '', /domain: .*empty label/);
  assert.deepEqual(seen, ['xn--bcher-kva.example'], 'handler not called for bad input');
});

test('a handler bug becomes internal without a stack trace; RpcError passes through', async () => {
  const r = new Router(quietLogger);
  r.addModule(
    fakeWebsites({
      'create website': () => Promise.reject(new TypeError('secret detail at /root/x.ts:12')),
      'delete website': () => Promise.reject(new RpcError('not-found', 'No website a.example on this host.')),
    }),
  );
  const bug = await r.dispatch('create website', { domain: 'a.example' }, meta);
  assert.equal(!bug.ok && bug.error.code, 'internal');
  assert.doesNotMatch(JSON.stringify(bug), /secret detail|x\.ts|TypeError/);
  const nf = await r.dispatch('delete website', { domain: 'a.example' }, meta);
  assert.deepEqual(nf, {
    ok: false,
    error: { code: 'not-found', message: 'No website a.example on this host.' },
  });
});

test('a handler that does not answer in time gets timeout and is aborted', async () => {
  let aborted = false;
  const r = new Router(quietLogger, 0.0005); // 'list websites' 10 s → 5 ms
  r.addModule(
    fakeWebsites({
      'list websites': (_req, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve({ websites: [] });
          });
        }),
    }),
  );
  const t = await r.dispatch('list websites', {}, meta);
  assert.equal(!t.ok && t.error.code, 'timeout');
  assert.equal(aborted, true);
});

test('a reply that breaks the contract becomes internal', async () => {
  const r = new Router(quietLogger);
  r.addModule(
    fakeWebsites({ 'list websites': () => Promise.resolve({ websites: [{ domain: 1 }] } as never) }),
  );
  const t = await r.dispatch('list websites', {}, meta);
  assert.equal(!t.ok && t.error.code, 'internal');
});

test('mutations of one module run one at a time', async () => {
  let running = 0;
  let maxRunning = 0;
  const r = new Router(quietLogger);
  r.addModule(
    fakeWebsites({
      'create website': async (req) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((res) => setTimeout(res, 5));
        running--;
        return site(req.domain);
      },
    }),
  );
  await Promise.all(
    Array.from({ length: 10 }, (_, i) => r.dispatch('create website', { domain: `s${i}.example` }, meta)),
  );
  assert.equal(maxRunning, 1);
});

test('an unavailable module answers unsupported with its reason', async () => {
  const r = new Router(quietLogger);
  r.addModule({
    name: 'ftp',
    availability: () => ({ available: false, reason: 'proftpd is not installed on this host' }),
    handlers: {} as HandlersOf<'ftp'>,
  });
  const t = await r.dispatch('list ftp users', {}, meta);
  assert.deepEqual(t, {
    ok: false,
    error: { code: 'unsupported', message: 'proftpd is not installed on this host' },
  });
});

function fakeSystem(handlers: Partial<HandlersOf<'system'>>): AgentModule<'system'> {
  return {
    name: 'system',
    availability: () => ({ available: true }),
    handlers: handlers as HandlersOf<'system'>,
  };
}

test('an event without parameters takes {} or nothing; anything else is still validated', async () => {
  const seen: Array<{ req: unknown; requestId: string | undefined }> = [];
  const r = new Router(quietLogger);
  r.addModule(
    fakeSystem({
      ping: (req, ctx) => {
        seen.push({ req, requestId: ctx.requestId });
        return Promise.resolve({ pong: true, time: 1, agentVersion: 'test' });
      },
    }),
  );
  for (const params of [{}, undefined]) {
    const ok = await r.dispatch('ping', params, meta);
    assert.deepEqual(ok, { ok: true, data: { pong: true, time: 1, agentVersion: 'test' } });
  }
  const requestId = randomUUID();
  assert.ok((await r.dispatch('ping', { requestId }, meta)).ok);
  assert.deepEqual(seen, [
    { req: {}, requestId: undefined },
    { req: {}, requestId: undefined },
    { req: { requestId }, requestId },
  ]);

  const unknownKey = await r.dispatch('ping', { x: 1 }, meta);
  assert.equal(!unknownKey.ok && unknownKey.error.code, 'invalid-argument');
  assert.match(!unknownKey.ok ? unknownKey.error.message : '', /unknown field\(s\) x/);
  const inherited = Object.create({ x: 1 }) as object;
  for (const bad of [null, [], 'ping', 42, true, { requestId: 'not-a-uuid' }, inherited]) {
    const reply = await r.dispatch('ping', bad, meta);
    assert.equal(!reply.ok && reply.error.code, 'invalid-argument', `refused: ${JSON.stringify(bad)}`);
  }
  assert.equal(seen.length, 3, 'the handler never saw a refused request');
});

test('takesNoParams recognises only strict request schemas without fields', () => {
  assert.equal(takesNoParams(rpcEvents.ping.request), true);
  assert.equal(takesNoParams(rpcEvents['list websites'].request), true);
  assert.equal(takesNoParams(rpcEvents['create website'].request), false);
  assert.equal(takesNoParams(z.object({})), false, 'a non-strict object accepts unknown keys');
  assert.equal(takesNoParams(z.strictObject({ limit: z.number().default(10) })), false);
  assert.equal(takesNoParams(z.strictObject({ name: z.string().optional() })), false);
  assert.equal(takesNoParams(z.string()), false);
});

test('the AbortSignal asked for after the timeout is already aborted', async () => {
  let release: (() => void) | undefined;
  let signal: AbortSignal | undefined;
  const r = new Router(quietLogger, 0.0005); // 'list websites' 10 s → 5 ms
  r.addModule(
    fakeWebsites({
      'list websites': (_req, ctx) =>
        new Promise((resolve) => {
          release = () => {
            signal = ctx.signal;
            resolve({ websites: [] });
          };
        }),
    }),
  );
  const t = await r.dispatch('list websites', {}, meta);
  assert.equal(!t.ok && t.error.code, 'timeout');
  release?.();
  assert.equal(signal?.aborted, true);
});

test('a handler that throws synchronously is an internal error, not a crash', async () => {
  const r = new Router(quietLogger);
  r.addModule(
    fakeSystem({
      ping: () => {
        throw new TypeError('boom');
      },
    }),
  );
  const t = await r.dispatch('ping', {}, meta);
  assert.equal(!t.ok && t.error.code, 'internal');
});
