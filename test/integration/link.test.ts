import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { createServer } from 'node:net';
import os from 'node:os';
import { io as ioc, type Socket } from 'socket.io-client';
import { createCa, issueCertificate } from '../../shared/pki/index.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';
import { tryAgentConnection } from '../helpers/agent-client.ts';
import { quietLogger, testManager } from '../helpers/panel-link.ts';
import { spawnAgent } from '../helpers/agent-process.ts';
import { tempDir } from '../helpers/tmp.ts';

let pki: TestPki;
let agent: RunningAgent;

async function startInProcessAgent(hostId: string): Promise<RunningAgent> {
  const files = await pki.agent(hostId);
  const sandbox = tempDir('ponio-link-');
  const cfg = loadAgentConfig(
    { listen: '127.0.0.1:0', cert: files.certFile, key: files.keyFile, ca: files.caFile, sandbox },
    {},
  );
  return startAgent(cfg, quietLogger);
}

/** Connects a raw socket.io client with the given TLS material; resolves 'connected' or the error. */
function rawConnect(
  port: number,
  tls: { cert?: string; key?: string; ca: string },
): Promise<{ socket: Socket | null; error: string | null }> {
  return new Promise((resolve) => {
    const socket = ioc(`https://127.0.0.1:${port}`, {
      transports: ['websocket'],
      reconnection: false,
      timeout: 3000,
      ...tls,
      rejectUnauthorized: true,
      checkServerIdentity: () => undefined,
    } as Parameters<typeof ioc>[1]);
    socket.once('hello', () => resolve({ socket, error: null }));
    socket.once('connect_error', (err) => {
      socket.close();
      resolve({ socket: null, error: err.message });
    });
  });
}

before(async () => {
  pki = await makeTestPki();
  agent = await startInProcessAgent('web1');
});
after(async () => {
  await agent.stop();
});

describe('panel → agent over mutual TLS', () => {
  test('a call round-trips and the hello announces the modules', async () => {
    const m = testManager(pki);
    try {
      m.add({ id: 'web1', address: '127.0.0.1', port: agent.port });
      const st = await m.waitForState('web1', 'online');
      assert.equal(st.hello?.protocolVersion, 1);
      assert.deepEqual(
        st.hello?.modules.map((x) => x.name),
        ['system', 'websites', 'ftp', 'mysql', 'firewall', 'backups'],
      );
      const r = await m.call('web1', 'ping', {});
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.data.pong, true);
      const info = await m.call('web1', 'system info', {});
      assert.ok(info.ok, JSON.stringify(info));
      assert.equal(info.data.hostname, os.hostname());
      assert.ok(info.data.memory.totalBytes > 0);
      assert.ok(
        info.data.disks.some((d) => d.mount === '/'),
        'root filesystem listed',
      );
      assert.match(info.data.kernel, /\d+\.\d+/);
    } finally {
      await m.close();
    }
  });

  test('a malformed request gets invalid-argument and the agent keeps serving', async () => {
    const m = testManager(pki);
    try {
      m.add({ id: 'web1', address: '127.0.0.1', port: agent.port });
      await m.waitForState('web1', 'online');
      const bad = await m.call('web1', 'ping', { surprise: 1 } as never);
      assert.equal(bad.ok, false);
      assert.equal(!bad.ok && bad.error.code, 'invalid-argument');
      assert.match(!bad.ok ? bad.error.message : '', /unknown field.*surprise/);
      const badId = await m.call('web1', 'ping', { requestId: 'not-a-uuid' });
      assert.equal(!badId.ok && badId.error.code, 'invalid-argument');
      const ok = await m.call('web1', 'ping', {});
      assert.ok(ok.ok);
    } finally {
      await m.close();
    }
  });

  test('non-object params and junk events are answered, never crash the agent', async () => {
    const { socket } = await rawConnect(agent.port, {
      cert: pki.panel.certPem,
      key: pki.panel.keyPem,
      ca: pki.ca.certPem,
    });
    assert.ok(socket);
    try {
      for (const params of [null, 42, 'x', [1, 2], { requestId: 5 }]) {
        const r = (await socket.timeout(3000).emitWithAck('ping', params)) as {
          ok: boolean;
          error?: { code: string };
        };
        assert.equal(r.ok, false, `params ${JSON.stringify(params)}`);
        assert.equal(r.error?.code, 'invalid-argument');
      }
      const unknown = (await socket.timeout(3000).emitWithAck('format disk', {})) as {
        ok: boolean;
        error?: { code: string };
      };
      assert.equal(unknown.error?.code, 'unsupported');
      const r = (await socket.timeout(3000).emitWithAck('ping', {})) as { ok: boolean };
      assert.equal(r.ok, true);
    } finally {
      socket.close();
    }
  });
});

describe('the agent refuses every client but the panel', () => {
  test('no client certificate', async () => {
    const r = await rawConnect(agent.port, { ca: pki.ca.certPem });
    assert.equal(r.socket, null);
    assert.ok(r.error);
  });

  test('a certificate from another CA', async () => {
    const other = await createCa({ commonName: 'evil CA' });
    const cert = await issueCertificate({ ca: other, role: { kind: 'panel' } });
    const r = await rawConnect(agent.port, { cert: cert.certPem, key: cert.keyPem, ca: pki.ca.certPem });
    assert.equal(r.socket, null);
  });

  test('an agent certificate (urn:ponio:host:*) instead of the panel’s', async () => {
    const hostCert = await pki.agent('web2');
    const r = await rawConnect(agent.port, {
      cert: hostCert.certPem,
      key: hostCert.keyPem,
      ca: pki.ca.certPem,
    });
    assert.equal(r.socket, null);
  });

  test('an expired panel certificate', async () => {
    const expired = await issueCertificate({
      ca: pki.ca,
      role: { kind: 'panel' },
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const r = await rawConnect(agent.port, {
      cert: expired.certPem,
      key: expired.keyPem,
      ca: pki.ca.certPem,
    });
    assert.equal(r.socket, null);
  });

  test('a revoked panel certificate', async () => {
    const second = await issueCertificate({ ca: pki.ca, role: { kind: 'panel' } });
    const before = await rawConnect(agent.port, {
      cert: second.certPem,
      key: second.keyPem,
      ca: pki.ca.certPem,
    });
    assert.ok(before.socket, 'valid second panel certificate is accepted');
    const dropped = new Promise<void>((resolve) => before.socket?.once('disconnect', () => resolve()));
    await agent.revocations.replace([second.serial]);
    agent.links.enforceRevocations();
    await dropped;
    const after = await rawConnect(agent.port, {
      cert: second.certPem,
      key: second.keyPem,
      ca: pki.ca.certPem,
    });
    assert.equal(after.socket, null);
    await agent.revocations.replace([]);
  });

  test('the panel’s own certificate is accepted', async () => {
    const r = await rawConnect(agent.port, {
      cert: pki.panel.certPem,
      key: pki.panel.keyPem,
      ca: pki.ca.certPem,
    });
    assert.ok(r.socket, r.error ?? '');
    r.socket.close();
  });

  test('the HTTP long-polling transport is refused, even with the panel’s certificate', async () => {
    const status = await new Promise<{ code: number; body: string }>((resolve, reject) => {
      const req = https.get(
        `https://127.0.0.1:${agent.port}/socket.io/?EIO=4&transport=polling`,
        {
          cert: pki.panel.certPem,
          key: pki.panel.keyPem,
          ca: pki.ca.certPem,
          checkServerIdentity: () => undefined,
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
    });
    assert.equal(status.code, 400, status.body);
    assert.match(status.body, /Transport unknown/);
    const r = await tryAgentConnection(
      agent.port,
      { cert: pki.panel.certPem, key: pki.panel.keyPem, ca: pki.ca.certPem },
      { transports: ['polling'], timeoutMs: 3000 },
    );
    assert.match(r, /^refused/);
  });
});

describe('the panel refuses an agent that is not the host it expects', () => {
  test('certificate names another host id → refused, no call goes through', async () => {
    const m = testManager(pki);
    try {
      m.add({ id: 'web9', address: '127.0.0.1', port: agent.port });
      const st = await m.waitForState('web9', 'refused');
      assert.match(st.lastError ?? '', /urn:ponio:host:web1.*expected urn:ponio:host:web9/);
      const r = await m.call('web9', 'ping', {});
      assert.equal(!r.ok && r.error.code, 'unavailable');
    } finally {
      await m.close();
    }
  });

  test('an agent with a certificate of another CA → refused', async () => {
    const other = await createCa();
    const m = testManager(pki, { caPem: other.certPem });
    try {
      m.add({ id: 'web1', address: '127.0.0.1', port: agent.port });
      const st = await m.waitForState('web1', 'refused');
      assert.ok(st.lastError);
    } finally {
      await m.close();
    }
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('a real agent process', () => {
  test('killed and restarted: host goes offline then online again, no panel restart', async () => {
    const files = await pki.agent('proc1');
    const sandbox = tempDir('ponio-proc-');
    const port = await freePort();
    const args = [
      '--listen',
      `127.0.0.1:${port}`,
      '--cert',
      files.certFile,
      '--key',
      files.keyFile,
      '--ca',
      files.caFile,
      '--sandbox',
      sandbox,
    ];
    let proc = await spawnAgent(args);
    const m = testManager(pki);
    try {
      m.add({ id: 'proc1', address: '127.0.0.1', port });
      await m.waitForState('proc1', 'online');
      assert.ok((await m.call('proc1', 'ping', {})).ok);
      await proc.kill();
      const off = await m.waitForState('proc1', 'offline');
      assert.ok(off.lastError);
      const r = await m.call('proc1', 'ping', {});
      assert.equal(!r.ok && r.error.code, 'unavailable');
      proc = await spawnAgent(args);
      await m.waitForState('proc1', 'online', 15_000);
      assert.ok((await m.call('proc1', 'ping', {})).ok);
    } finally {
      await m.close();
      await proc.stop();
    }
  });

  test('a bad config exits 2 with one clear line', async () => {
    await assert.rejects(
      spawnAgent(['--listen', 'nonsense']),
      /exited with 2:\nponio-agent: invalid agent configuration: listen: must be HOST:PORT/,
    );
    await assert.rejects(
      spawnAgent(['--listen', '127.0.0.1:0', '--cert', '/nonexistent.crt']),
      /exited with 2:\nponio-agent: cannot read certificate \/nonexistent.crt: ENOENT/,
    );
  });
});
