// Reverse links that end together (panel certificate rotation here; a panel restart is the same)
// are re-dialed spread over REDIAL_SPREAD_MS, not all at once: two agents with the extreme
// jitter values (0 and the top of the window) on a real agent listener, through the REST API's
// rotation. The first is back before the second dials at all; both are back within the bound.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AgentLinks } from '../../agent/link.ts';
import { startDialOut, type DialOut } from '../../agent/dialer.ts';
import { Router } from '../../agent/rpc/router.ts';
import { PROTOCOL_VERSION, type Hello } from '../../shared/protocol/index.ts';
import type { IssuedCert } from '../../shared/pki/index.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { listenerUrl, recordReverseHost } from '../helpers/reverse.ts';
import { quietLogger } from '../helpers/panel-link.ts';

const SPREAD_MS = 4_000;
let t: TestPanel;
const dials: DialOut[] = [];

const hello: Hello = {
  protocolVersion: PROTOCOL_VERSION,
  agentVersion: 'test',
  hostname: 'redial',
  mode: 'sandbox',
  modules: [],
};

function dialer(cert: IssuedCert, random: number): DialOut {
  const links = new AgentLinks({
    tls: { certPem: cert.certPem, keyPem: cert.keyPem, caPem: t.panel.ctx.pki.ca.certPem },
    revoked: () => new Set(),
    router: new Router(quietLogger),
    hello: () => hello,
    logger: quietLogger,
  });
  const d = startDialOut({
    urls: [listenerUrl(t)],
    links,
    logger: quietLogger,
    spreadMs: SPREAD_MS,
    random: () => random,
  });
  dials.push(d);
  return d;
}

before(async () => {
  t = await startTestPanel();
});
after(async () => {
  for (const d of dials) d.stop();
  await t?.close();
});

test('after a panel certificate rotation the agents re-dial spread over the window, within its bound', async () => {
  const m = t.panel.ctx.hosts.manager;
  const early = dialer(await recordReverseHost(t, 'sp1'), 0);
  const late = dialer(await recordReverseHost(t, 'sp2'), 0.999999);
  await Promise.all([early.whenConnected(10_000), late.whenConnected(10_000)]);
  await m.waitForState('sp1', 'online', 10_000);
  await m.waitForState('sp2', 'online', 10_000);

  const cut = Date.now();
  const back = new Map<string, number>();
  const onState = (s: { id: string; state: string }): void => {
    if (s.state === 'online' && !back.has(s.id)) back.set(s.id, Date.now() - cut);
  };
  m.on('state', onState);
  const r = await t.request('POST', '/api/v1/panel/certificate/rotate');
  assert.equal(r.status, 200, r.text);
  // Both links were cut by the rotation…
  await m.waitForState('sp1', 'online', SPREAD_MS + 5_000);
  // …and when the first is back, the second has not dialed yet: its delay is the window's top.
  assert.equal(late.connected(), false, 'the second agent waits its spread delay');
  assert.notEqual(m.status('sp2')?.state, 'online');
  await m.waitForState('sp2', 'online', SPREAD_MS + 5_000);
  m.off('state', onState);
  const a = back.get('sp1') ?? Infinity;
  const b = back.get('sp2') ?? Infinity;
  assert.ok(b > a, `the later agent came back later (${a} ms, ${b} ms)`);
  // Within the bound: the spread plus the time to connect (generous on a loaded machine).
  assert.ok(b <= SPREAD_MS + 5_000, `back within the spread bound (${b} ms)`);
  // Both are linked again (hello checked) through the listener's rotated certificate.
  assert.equal(early.connected() && late.connected(), true);
});
