// A real ACME server for the HTTPS tests: Debian's pebble (Let's Encrypt's test CA) and
// pebble-challtestsrv as its DNS (every name resolves to 127.0.0.1 unless a test says otherwise),
// both on loopback ports chosen free at start. pebble validates HTTP-01 challenges by connecting
// to <name>:httpPort, which the test sets to the sandbox Apache's HTTP port.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, promises as fsp, writeFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freeLoopbackPort, waitUntil } from '../../agent/os/process.ts';
import { requireProgram } from './programs.ts';

export interface Pebble {
  /** The ACME directory URL. */
  directoryUrl: string;
  /** PEM of the CA pebble's own HTTPS listener uses (the agent's `caBundle`). */
  tlsCaFile: string;
  /** PEM of the root pebble signs site certificates with (from its management interface). */
  root(): Promise<string>;
  /** Makes `host` resolve to `address` in pebble's DNS (e.g. an address nothing listens on). */
  setA(host: string, address: string): Promise<void>;
  stop(): Promise<void>;
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** Starts pebble (validating HTTP-01 on `httpPort`) and its DNS; stop() ends both. */
export async function startPebble(httpPort: number): Promise<Pebble> {
  const pebbleBin = requireProgram('pebble', 'pebble');
  const challBin = requireProgram('pebble-challtestsrv', 'pebble');
  const openssl = requireProgram('openssl', 'openssl');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-pebble-'));
  const cert = path.join(dir, 'tls.crt');
  const key = path.join(dir, 'tls.key');
  execFileSync(
    openssl,
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
      ...['-subj', '/CN=pebble test listener', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      ...['-keyout', key, '-out', cert],
    ],
    { stdio: 'pipe' },
  );
  const [acmePort, mgmtPort, dnsPort, challMgmt, tlsPort] = await Promise.all([
    freeLoopbackPort(),
    freeLoopbackPort(),
    freeLoopbackPort(),
    freeLoopbackPort(),
    freeLoopbackPort(),
  ]);
  const config = path.join(dir, 'pebble.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: cert,
        privateKey: key,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  let log = '';
  const keep = (p: ChildProcess): ChildProcess => {
    p.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    p.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    return p;
  };
  const chall = keep(
    spawn(
      challBin,
      [
        ...['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', ''],
        ...['-management', `127.0.0.1:${challMgmt}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  const pebble = keep(
    spawn(pebbleBin, ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    }),
  );
  const ca = await fsp.readFile(cert, 'utf8');
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const up = await waitUntil(
    () =>
      get(directoryUrl, ca).then(
        (r) => r.status === 200,
        () => false,
      ),
    15_000,
    100,
  );
  const stop = async (): Promise<void> => {
    for (const p of [pebble, chall]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await fsp.rm(dir, { recursive: true, force: true });
  };
  if (!up) {
    await stop();
    throw new Error(`pebble did not start on 127.0.0.1:${acmePort}:\n${log}`);
  }
  return {
    directoryUrl,
    tlsCaFile: cert,
    async root() {
      const r = await get(`https://127.0.0.1:${mgmtPort}/roots/0`, ca);
      if (r.status !== 200) throw new Error(`pebble's management interface answered ${r.status}`);
      return r.body;
    },
    setA: (host, address) =>
      new Promise<void>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: challMgmt, path: '/add-a', method: 'POST', agent: false },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`add-a: ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ host: host.endsWith('.') ? host : `${host}.`, addresses: [address] }));
      }),
    stop,
  };
}
