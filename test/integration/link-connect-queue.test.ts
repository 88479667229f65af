// The connection manager with many hosts: a bounded number of handshakes in flight (the others
// queue), and one shared TLS context that still checks every agent on every handshake.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createServer, type Server, type Socket as NetSocket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Server as IoServer } from 'socket.io';
import { createCa, issueCertificate } from '../../shared/pki/index.ts';
import { normaliseSerial } from '../../shared/pki/serial.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import {
  ConnectionManager,
  DEFAULT_MAX_CONCURRENT_CONNECTS,
  type ConnectionManagerOptions,
  type HostStatus,
  type PanelTls,
} from '../../server/hosts/connection-manager.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { quietLogger } from '../helpers/panel-link.ts';

const AGENTS = 6;
let pki: TestPki;
const agents: Array<{ id: string; port: number; serial: string; agent: RunningAgent }> = [];
const dirs: string[] = [];

before(async () => {
  pki = await makeTestPki();
  dirs.push(pki.dir);
  for (let i = 0; i < AGENTS; i++) {
    const id = `q${i}`;
    const files = await pki.agent(id);
    const sandbox = mkdtempSync(path.join(os.tmpdir(), 'ponio-queue-'));
    dirs.push(sandbox);
    const cfg = loadAgentConfig(
      { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
      {},
    );
    const agent = await startAgent(cfg, quietLogger);
    agents.push({ id, port: agent.port, serial: normaliseSerial(files.serial), agent });
  }
});

after(async () => {
  await Promise.all(agents.map((a) => a.agent.stop()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function manager(
  extra: Partial<ConnectionManagerOptions> & { material?: () => PanelTls } = {},
): ConnectionManager {
  const material: PanelTls = { certPem: pki.panel.certPem, keyPem: pki.panel.keyPem, caPem: pki.ca.certPem };
  const { material: tls, ...rest } = extra;
  return new ConnectionManager({
    tls: tls ?? (() => material),
    logger: quietLogger,
    backoff: { minMs: 100, maxMs: 500 },
    connectTimeoutMs: 3000,
    ...rest,
  });
}

function target(i: number): { id: string; address: string; port: number } {
  const a = agents[i];
  assert.ok(a);
  return { id: a.id, address: '127.0.0.1', port: a.port };
}

/** A TCP server that accepts connections and never answers (a hung host). */
async function blackHole(): Promise<{ server: Server; port: number; connected: Promise<void> }> {
  const sockets: NetSocket[] = [];
  let onConn: () => void = () => undefined;
  const connected = new Promise<void>((resolve) => (onConn = resolve));
  const server = createServer((s) => {
    sockets.push(s);
    onConn();
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, connected };
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('bounded connection attempts', () => {
  test('the default limit is 50 handshakes in flight', () => {
    const m = manager();
    assert.equal(DEFAULT_MAX_CONCURRENT_CONNECTS, 50);
    assert.deepEqual(m.connectQueue(), { inFlight: 0, waiting: 0, max: 50 });
    void m.close();
  });

  test('at most N handshakes at once; the others queue and every host comes online', async () => {
    const m = manager({ maxConcurrentConnects: 2 });
    let maxSeen = 0;
    m.on('state', () => {
      maxSeen = Math.max(maxSeen, m.connectQueue().inFlight);
    });
    try {
      for (let i = 0; i < AGENTS; i++) m.add(target(i));
      assert.deepEqual(m.connectQueue(), { inFlight: 2, waiting: AGENTS - 2, max: 2 });
      assert.deepEqual(
        m.statuses().map((s) => s.state),
        Array<string>(AGENTS).fill('connecting'),
      );
      await Promise.all(agents.map((a) => m.waitForState(a.id, 'online', 20_000)));
      assert.ok(maxSeen <= 2, `at most 2 in flight (saw ${maxSeen})`);
      assert.deepEqual(m.connectQueue(), { inFlight: 0, waiting: 0, max: 2 });
      const replies = await Promise.all(agents.map((a) => m.call(a.id, 'ping', {})));
      assert.ok(
        replies.every((r) => r.ok),
        JSON.stringify(replies),
      );
    } finally {
      await m.close();
    }
  });

  test('a hung host holds its slot until removed; the queued host then connects', async () => {
    const hole = await blackHole();
    const m = manager({ maxConcurrentConnects: 1, connectTimeoutMs: 120_000 });
    try {
      m.add({ id: 'hung', address: '127.0.0.1', port: hole.port });
      m.add(target(0));
      await hole.connected;
      assert.deepEqual(m.connectQueue(), { inFlight: 1, waiting: 1, max: 1 });
      assert.equal(m.status('q0')?.state, 'connecting');
      m.remove('hung');
      assert.deepEqual(m.connectQueue(), { inFlight: 1, waiting: 0, max: 1 });
      await m.waitForState('q0', 'online', 20_000);
      assert.deepEqual(m.connectQueue(), { inFlight: 0, waiting: 0, max: 1 });
    } finally {
      await m.close();
      await new Promise((resolve) => hole.server.close(resolve));
    }
  });

  test('a failing host gives its slot back at each failure: the others still connect', async () => {
    const port = await closedPort();
    const m = manager({ maxConcurrentConnects: 1 });
    const failures: HostStatus[] = [];
    m.on('state', (s) => {
      if (s.id === 'gone' && s.state === 'offline') failures.push(s);
    });
    try {
      m.add({ id: 'gone', address: '127.0.0.1', port });
      m.add(target(1));
      m.add(target(2));
      await m.waitForState('q1', 'online', 20_000);
      await m.waitForState('q2', 'online', 20_000);
      assert.ok(failures.length >= 1);
      assert.match(failures[0]?.lastError ?? '', /connection refused/);
      assert.equal(m.status('gone')?.state, 'offline');
    } finally {
      await m.close();
    }
  });
});

describe('one shared TLS context, every handshake fully checked', () => {
  test('the same agent port under another host id is refused by the same manager', async () => {
    const m = manager();
    try {
      m.add(target(0));
      await m.waitForState('q0', 'online');
      m.add({ id: 'impostor', address: '127.0.0.1', port: target(0).port });
      const st = await m.waitForState('impostor', 'refused');
      assert.match(st.lastError ?? '', /urn:ponio:host:q0.*expected urn:ponio:host:impostor/);
      assert.equal(m.status('q0')?.state, 'online', 'the genuine host is untouched');
    } finally {
      await m.close();
    }
  });

  test('an agent certificate revoked after a first connection is refused on the next one', async () => {
    const revoked = new Set<string>();
    const m = manager({ revoked: () => revoked });
    const a = agents[3];
    assert.ok(a);
    try {
      m.add(target(3));
      await m.waitForState(a.id, 'online');
      revoked.add(a.serial);
      m.add(target(3)); // reconnects (a TLS session resumption would skip the check)
      const st = await m.waitForState(a.id, 'refused');
      assert.match(st.lastError ?? '', /is revoked/);
      const r = await m.call(a.id, 'ping', {});
      assert.equal(!r.ok && r.error.code, 'unavailable');
      revoked.delete(a.serial);
      m.add(target(3));
      await m.waitForState(a.id, 'online');
    } finally {
      await m.close();
    }
  });

  test('an agent whose certificate is from another CA is refused', async () => {
    const other = await createCa({ commonName: 'other CA' });
    const m = manager({
      material: () => ({ certPem: pki.panel.certPem, keyPem: pki.panel.keyPem, caPem: other.certPem }),
    });
    try {
      m.add(target(4));
      const st = await m.waitForState('q4', 'refused');
      assert.match(st.lastError ?? '', /TLS refused|certificate/);
    } finally {
      await m.close();
    }
  });

  test('new panel material (rotation) is used by the next connections', async () => {
    const good: PanelTls = { certPem: pki.panel.certPem, keyPem: pki.panel.keyPem, caPem: pki.ca.certPem };
    const foreignCa = await createCa({ commonName: 'foreign CA' });
    const foreign = await issueCertificate({ ca: foreignCa, role: { kind: 'panel' } });
    let material = good;
    const m = manager({ material: () => material, logger: pino({ level: 'silent' }) });
    try {
      m.add(target(5));
      await m.waitForState('q5', 'online');
      // A panel certificate the agent does not trust: the agent refuses the new connection.
      material = { ...good, certPem: foreign.certPem, keyPem: foreign.keyPem };
      m.reconnectAll();
      const st = await m.waitForState('q5', 'refused');
      assert.ok(st.lastError);
      // A freshly issued one from the right CA: accepted.
      const fresh = await issueCertificate({ ca: pki.ca, role: { kind: 'panel' } });
      material = { ...good, certPem: fresh.certPem, keyPem: fresh.keyPem };
      m.reconnectAll();
      await m.waitForState('q5', 'online', 20_000);
      assert.ok((await m.call('q5', 'ping', {})).ok);
    } finally {
      await m.close();
    }
  });
});

test('unusable panel TLS material: the host is refused with the reason, its slot is given back', async () => {
  const other = await issueCertificate({ ca: pki.ca, role: { kind: 'panel' } });
  // The certificate of one key pair with the key of another: no SecureContext can be built.
  const m = manager({
    maxConcurrentConnects: 1,
    material: () => ({ certPem: pki.panel.certPem, keyPem: other.keyPem, caPem: pki.ca.certPem }),
  });
  try {
    m.add(target(0));
    const st = await m.waitForState('q0', 'refused');
    assert.match(st.lastError ?? '', /TLS material is unusable/);
    assert.equal(m.connectQueue().inFlight, 0);
  } finally {
    await m.close();
  }
});

test('an agent that sends a binary packet is dropped by the panel (JSON-only link parser)', async () => {
  const files = await pki.agent('bin1');
  const server = https.createServer({
    cert: files.certPem,
    key: files.keyPem,
    ca: pki.ca.certPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  // A Socket.IO server with the default parser: it can send binary attachments.
  const io = new IoServer(server, { transports: ['websocket'] });
  let connections = 0;
  io.on('connection', (s) => {
    connections++;
    s.emit('hello', Buffer.from('not json'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const m = manager({ backoff: { minMs: 60_000, maxMs: 60_000 } });
  try {
    m.add({ id: 'bin1', address: '127.0.0.1', port });
    const st = await m.waitForState('bin1', 'offline');
    assert.match(st.lastError ?? '', /parse error/);
    assert.equal(connections, 1);
    assert.equal(m.status('bin1')?.hello, null, 'never online');
  } finally {
    await m.close();
    await io.close();
  }
});
