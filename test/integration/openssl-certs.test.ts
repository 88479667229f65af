import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { io as ioc } from 'socket.io-client';
import { requireProgram } from '../helpers/programs.ts';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { tempDir } from '../helpers/tmp.ts';

// Certificates made with the openssl CLI following design §3 (not with PonIO's own PKI code),
// and the agent started as `npx ponio-agent serve …`: proves the trust rules are the documented
// X.509 ones, not an artefact of our generator.
let dir: string;
let agent: AgentProcess;
const f = (name: string): string => path.join(dir, name);

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function issue(name: string, ca: string, ext: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${name}.key`)]);
  openssl(['req', '-new', '-key', f(`${name}.key`), '-subj', `/CN=${name}`, '-out', f(`${name}.csr`)]);
  writeFileSync(f(`${name}.ext`), ext);
  openssl([
    'x509',
    '-req',
    '-in',
    f(`${name}.csr`),
    '-CA',
    f(`${ca}.crt`),
    '-CAkey',
    f(`${ca}.key`),
    '-CAcreateserial',
    '-days',
    '90',
    '-sha256',
    '-extfile',
    f(`${name}.ext`),
    '-out',
    f(`${name}.crt`),
  ]);
}

function makeCa(name: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${name}.key`)]);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    f(`${name}.key`),
    '-subj',
    `/CN=${name}`,
    '-days',
    '365',
    '-sha256',
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    f(`${name}.crt`),
  ]);
}

function connect(cert: string | null, key: string | null): Promise<'accepted' | 'refused'> {
  return new Promise((resolve) => {
    const socket = ioc(`https://127.0.0.1:${agent.port}`, {
      transports: ['websocket'],
      reconnection: false,
      timeout: 3000,
      ca: readFileSync(f('ca.crt'), 'utf8'),
      ...(cert && key ? { cert: readFileSync(f(cert), 'utf8'), key: readFileSync(f(key), 'utf8') } : {}),
      checkServerIdentity: () => undefined,
    } as Parameters<typeof ioc>[1]);
    socket.once('hello', () => {
      void (async () => {
        const r = (await socket.timeout(3000).emitWithAck('ping', {})) as {
          ok: boolean;
          data?: { pong: boolean };
        };
        socket.close();
        resolve(r.ok && r.data?.pong === true ? 'accepted' : 'refused');
      })();
    });
    socket.once('connect_error', () => {
      socket.close();
      resolve('refused');
    });
  });
}

before(async () => {
  requireProgram('openssl', 'openssl');
  dir = tempDir('ponio-openssl-');
  makeCa('ca');
  makeCa('otherca');
  issue(
    'panel',
    'ca',
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:ponio:panel\n',
  );
  issue(
    'agent',
    'ca',
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:urn:ponio:host:h1,IP:127.0.0.1,DNS:localhost\n',
  );
  issue(
    'fakepanel',
    'otherca',
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:ponio:panel\n',
  );
  issue(
    'nouri',
    'ca',
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:panel.example\n',
  );
  const sandbox = tempDir('ponio-openssl-sbx-');
  agent = await spawnAgent(
    [
      '--listen',
      '127.0.0.1:0',
      '--cert',
      f('agent.crt'),
      '--key',
      f('agent.key'),
      '--ca',
      f('ca.crt'),
      '--sandbox',
      sandbox,
    ],
    { command: ['npx', '--no-install', 'ponio-agent'], timeoutMs: 60_000 },
  );
});
after(async () => {
  await agent?.stop();
});

test('npx ponio-agent serve with openssl-made certificates answers ping to the panel certificate', async () => {
  assert.equal(await connect('panel.crt', 'panel.key'), 'accepted');
});

test('…and refuses every other client', async () => {
  assert.equal(await connect(null, null), 'refused', 'no certificate');
  assert.equal(await connect('fakepanel.crt', 'fakepanel.key'), 'refused', 'panel URI but another CA');
  assert.equal(await connect('agent.crt', 'agent.key'), 'refused', 'an agent certificate');
  assert.equal(await connect('nouri.crt', 'nouri.key'), 'refused', 'right CA, no urn:ponio:panel');
});
