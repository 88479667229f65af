import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { Router } from '../../agent/rpc/router.ts';
import { AgentLinks, serveLink } from '../../agent/link.ts';
import { HostLink } from '../../server/hosts/link.ts';
import { ConnectionManager, WAITING_FOR_AGENT } from '../../server/hosts/connection-manager.ts';
import { PROTOCOL_VERSION, type AgentEvent, type Hello } from '../../shared/protocol/index.ts';
import { HELLO_EVENT } from '../../shared/protocol/hello.ts';
import type { AgentModule, HandlersOf } from '../../agent/modules/types.ts';
import { issueCertificate } from '../../shared/pki/index.ts';
import { memorySocketPair } from '../helpers/memory-link.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger } from '../helpers/panel-link.ts';

const hello: Hello = {
  protocolVersion: PROTOCOL_VERSION,
  agentVersion: 'test',
  hostname: 'mem',
  mode: 'sandbox',
  modules: [{ name: 'websites', available: true }],
};
const site = (domain: string) => ({
  domain,
  aliases: [],
  enabled: true,
  managed: true,
  docroot: '/x',
  adminEmail: null,
});
const peer = { address: '192.0.2.1', port: 7444, localPort: 50000 };

/** A router with a websites module that reports progress and remembers the requestIds it saw. */
function testRouter(seen: (string | undefined)[] = []): Router {
  const r = new Router(quietLogger);
  const handlers: Partial<HandlersOf<'websites'>> = {
    'list websites': () => Promise.resolve({ websites: [site('a.example')] }),
    'create website': (req, ctx) => {
      seen.push(ctx.requestId);
      ctx.progress('Writing the virtual host');
      return Promise.resolve(site(req.domain));
    },
  };
  const mod: AgentModule<'websites'> = {
    name: 'websites',
    availability: () => ({ available: true }),
    handlers: handlers as HandlersOf<'websites'>,
  };
  r.addModule(mod);
  return r;
}

const waitFor = <T>(fn: (resolve: (v: T) => void) => void, ms = 2000): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms);
    fn((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });

describe('host link over an in-memory socket pair', () => {
  test('hello, a call, a mutation with requestId and its progress event', async () => {
    const [panelEnd, agentEnd] = memorySocketPair();
    const seen: (string | undefined)[] = [];
    const link = new HostLink('h1', panelEnd, { logger: quietLogger });
    const events: AgentEvent[] = [];
    link.on('agentEvent', (e) => events.push(e));
    const gotHello = waitFor<Hello>((res) => link.once('hello', res));
    serveLink(agentEnd, peer, { router: testRouter(seen), hello: () => hello, logger: quietLogger });
    assert.equal((await gotHello).hostname, 'mem');

    const list = await link.call('list websites', {});
    assert.ok(list.ok, JSON.stringify(list));
    assert.deepEqual(
      list.data.websites.map((w) => w.domain),
      ['a.example'],
    );
    const created = await link.call('create website', { domain: 'b.example' });
    assert.ok(created.ok, JSON.stringify(created));
    assert.equal(seen.length, 1);
    assert.match(seen[0] ?? '', /^[0-9a-f-]{36}$/, 'the link gave the mutation a requestId');
    await new Promise((r) => setImmediate(r));
    const progress = events.find((e) => e.topic === 'progress');
    assert.ok(progress, `a progress event arrived (${JSON.stringify(events)})`);
    assert.equal((progress.data as { requestId: string }).requestId, seen[0]);
    link.close();
  });

  test('an invalid hello or another protocol version is refused and the link closed', async () => {
    for (const bad of [{ nope: 1 }, { ...hello, protocolVersion: PROTOCOL_VERSION + 1 }]) {
      const [panelEnd, agentEnd] = memorySocketPair();
      const link = new HostLink('h1', panelEnd, { logger: quietLogger });
      const refused = waitFor<string>((res) => link.once('refused', res));
      agentEnd.send(HELLO_EVENT, bad);
      assert.match(await refused, /invalid hello|protocol/);
      assert.equal(panelEnd.connected, false);
      const r = await link.call('list websites', {});
      assert.equal(!r.ok && r.error.code, 'unavailable');
    }
  });

  test('no ack → timeout; link gone during a call → unavailable; bad reply → internal', async () => {
    const [panelEnd, agentEnd] = memorySocketPair();
    const link = new HostLink('h1', panelEnd, { logger: quietLogger });
    const gotHello = waitFor<Hello>((res) => link.once('hello', res));
    agentEnd.send(HELLO_EVENT, hello);
    await gotHello;
    let pendingAcks = 0;
    agentEnd.onMessage((event, _data, ack) => {
      if (event === 'list websites') ack?.({ ok: true, data: { websites: 'not a list' } });
      else pendingAcks++; // never answered
    });
    const slow = await link.call('ping', {}, { timeoutMs: 50 });
    assert.equal(!slow.ok && slow.error.code, 'timeout');
    const bad = await link.call('list websites', {});
    assert.equal(!bad.ok && bad.error.code, 'internal');
    const during = link.call('ping', {}, { timeoutMs: 5000 });
    setTimeout(() => agentEnd.close(), 20);
    const cut = await during;
    assert.equal(!cut.ok && cut.error.code, 'unavailable');
    assert.equal(!cut.ok && cut.error.details, undefined, 'a read changed nothing');
    assert.equal(pendingAcks, 2);
  });

  test('link gone during a mutation → unavailable with outcome unknown (it may have acted)', async () => {
    const [panelEnd, agentEnd] = memorySocketPair();
    const link = new HostLink('h1', panelEnd, { logger: quietLogger });
    const gotHello = waitFor<Hello>((res) => link.once('hello', res));
    agentEnd.send(HELLO_EVENT, hello);
    await gotHello;
    agentEnd.onMessage(() => setTimeout(() => agentEnd.close(), 20)); // killed before its reply
    const cut = await link.call('create website', { domain: 'a.example' }, { timeoutMs: 5000 });
    assert.equal(!cut.ok && cut.error.code, 'unavailable');
    assert.deepEqual(!cut.ok && cut.error.details, { outcome: 'unknown' });
    assert.match(!cut.ok ? cut.error.message : '', /may have been done/);
  });
});

describe('connection manager with accepted (reverse) links', () => {
  const manager = (): ConnectionManager =>
    new ConnectionManager({
      tls: () => {
        throw new Error('a reverse host is never dialed');
      },
      logger: quietLogger,
    });

  test('a reverse host waits, goes online on accept, a newer link replaces the older', async () => {
    const m = manager();
    m.add({ id: 'r1', mode: 'reverse' });
    assert.equal(m.status('r1')?.state, 'offline');
    assert.equal(m.status('r1')?.lastError, WAITING_FOR_AGENT);
    const [p1, a1] = memorySocketPair();
    assert.equal(m.accept('r1', p1, 'test'), true);
    serveLink(a1, peer, { router: testRouter(), hello: () => hello, logger: quietLogger });
    await m.waitForState('r1', 'online', 2000);
    const r = await m.call('r1', 'list websites', {});
    assert.ok(r.ok, JSON.stringify(r));

    const [p2, a2] = memorySocketPair();
    assert.equal(m.accept('r1', p2, 'test'), true);
    assert.equal(p1.connected, false, 'the older link was closed');
    serveLink(a2, peer, { router: testRouter(), hello: () => hello, logger: quietLogger });
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(m.status('r1')?.state, 'online', "the old link's end does not mark the host offline");
    assert.ok((await m.call('r1', 'list websites', {})).ok);

    // The agent end closes: offline at once.
    a2.close();
    await m.waitForState('r1', 'offline', 2000);
    assert.match(m.status('r1')?.lastError ?? '', /connection lost/);
    await m.close();
  });

  test('unknown and forward-mode hosts are refused; remove() cuts the live link', async () => {
    const m = manager();
    const [p0] = memorySocketPair();
    assert.equal(m.accept('nobody', p0, 'test'), false);
    assert.equal(p0.connected, false);
    assert.deepEqual(m.acceptable('nobody'), { ok: false, reason: 'unknown or removed host' });

    m.add({ id: 'f1', address: '127.0.0.1', port: 1 }); // forward: the panel dials it
    const [pf] = memorySocketPair();
    assert.equal(m.accept('f1', pf, 'test'), false);
    assert.equal(pf.connected, false);
    m.remove('f1');

    m.add({ id: 'r2', mode: 'reverse' });
    const [p, a] = memorySocketPair();
    const agentSawClose = waitFor<string>((res) => a.onClose(res));
    m.accept('r2', p, 'test');
    serveLink(a, peer, { router: testRouter(), hello: () => hello, logger: quietLogger });
    await m.waitForState('r2', 'online', 2000);
    m.remove('r2');
    assert.ok(await agentSawClose, 'the agent end saw the link cut');
    assert.equal(m.status('r2'), null);
    await m.close();
  });
});

describe('agent links', () => {
  let pki: TestPki;
  before(async () => {
    pki = await makeTestPki();
  });

  test('broadcast reaches every link; a revoked panel certificate closes its link only', async () => {
    const revoked = new Set<string>();
    const other = await issueCertificate({ ca: pki.ca, role: { kind: 'panel' } });
    const host = await pki.agent('h1');
    const links = new AgentLinks({
      tls: { certPem: host.certPem, keyPem: host.keyPem, caPem: pki.ca.certPem },
      revoked: () => revoked,
      router: testRouter(),
      hello: () => hello,
      logger: quietLogger,
    });
    const der = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const [pA, aA] = memorySocketPair();
    const [pB, aB] = memorySocketPair();
    links.serve({ socket: aA, peer, panelCert: () => der(pki.panel.certPem), purpose: 'clientAuth' });
    links.serve({ socket: aB, peer, panelCert: () => der(other.certPem), purpose: 'clientAuth' });
    assert.equal(links.count(), 2);
    const seenA: string[] = [];
    const seenB: string[] = [];
    pA.onMessage((e, d) => e === 'event' && seenA.push((d as AgentEvent).topic));
    pB.onMessage((e, d) => e === 'event' && seenB.push((d as AgentEvent).topic));
    links.broadcast('firewall confirmed', {});
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([seenA, seenB], [['firewall confirmed'], ['firewall confirmed']]);

    // A host certificate is not the panel; a panel certificate without serverAuth cannot serve.
    assert.equal(links.checkPanel(der(host.certPem), 'clientAuth').ok, false);
    assert.equal(links.checkPanel(undefined, 'clientAuth').ok, false);

    revoked.add(other.serial);
    links.enforceRevocations();
    await new Promise((r) => setImmediate(r));
    assert.equal(pB.connected, false, 'the link with the revoked certificate is closed');
    assert.equal(pA.connected, true, 'the other link stays');
    assert.equal(links.count(), 1);
    links.closeAll();
  });
});

describe('request envelope by agent features', () => {
  /** The raw body the agent end receives for one call, after a hello with these features. */
  async function rawBody(features: string[] | undefined): Promise<Record<string, unknown>> {
    const [panelEnd, agentEnd] = memorySocketPair();
    const link = new HostLink('h1', panelEnd, { logger: quietLogger });
    const gotHello = waitFor<Hello>((res) => link.once('hello', res));
    const body = waitFor<Record<string, unknown>>((res) =>
      agentEnd.onMessage((event, data, ack) => {
        if (event !== 'list websites' || !ack) return;
        res(data as Record<string, unknown>);
        ack({ ok: true, data: { websites: [] } });
      }),
    );
    agentEnd.send(HELLO_EVENT, features === undefined ? hello : { ...hello, features });
    await gotHello;
    const r = await link.call('list websites', {});
    assert.ok(r.ok, JSON.stringify(r));
    agentEnd.close();
    return body;
  }

  test('an agent announcing "deadline" gets deadlineMs; an older agent without features does not', async () => {
    const withFeature = await rawBody(['deadline']);
    assert.equal(typeof withFeature.deadlineMs, 'number');
    const older = await rawBody(undefined);
    assert.equal('deadlineMs' in older, false, JSON.stringify(older));
  });
});
