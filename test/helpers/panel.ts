import https from 'node:https';
import { mkdtempSync, writeFileSync, mkdirSync, chmodSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { startPanel, type RunningPanel } from '../../server/main.ts';
import { loadPanelConfig, type PanelConfigInput } from '../../server/config.ts';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { issueCertificate } from '../../shared/pki/index.ts';
import { WebClient } from './web-client.ts';

const quiet = pino({ level: process.env.PONIO_TEST_LOG ?? 'silent' });

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  text: string;
}

export interface TestPanel {
  panel: RunningPanel;
  url: string;
  dataDir: string;
  /** Bearer token with the admin role. */
  adminToken: string;
  /** A token with the given role. */
  token(role: 'admin' | 'operator' | 'viewer'): string;
  /** HTTPS request to the panel (trusts the panel CA). JSON body in and out. */
  request<T = any>(
    method: string,
    urlPath: string,
    opts?: { body?: unknown; token?: string | null; headers?: Record<string, string>; rawBody?: string },
  ): Promise<ApiResponse<T>>;
  /** Adds an enrolled host backed by a real in-process agent in sandbox mode, and waits until it is online. */
  addSandboxHost(
    hostId: string,
    opts?: { sandboxDir?: string; modules?: Record<string, unknown>; logger?: Logger },
  ): Promise<{ agent: RunningAgent; sandboxDir: string }>;
  /** Creates a dashboard user with that role and returns a WebClient signed in as it. */
  signedIn(username: string, role: 'admin' | 'operator' | 'viewer'): Promise<WebClient>;
  close(): Promise<void>;
}

/** The password of users made by `signedIn` (long enough for the panel's rules). */
export const TEST_USER_PASSWORD = 'test user password 1';

/**
 * Starts a real panel (HTTPS on 127.0.0.1:0, temp data dir); `overrides` change its config,
 * `opts.logger` receives its log (silent by default).
 */
export async function startTestPanel(
  overrides: Partial<PanelConfigInput> = {},
  opts: { logger?: Logger } = {},
): Promise<TestPanel> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ponio-panel-'));
  const ownDirs: string[] = [];
  const config = loadPanelConfig(
    // The agent listener on a free loopback port: test panels run side by side.
    { host: '127.0.0.1', port: 0, dataDir, logLevel: 'silent', agentListen: '127.0.0.1:0', ...overrides },
    {},
  );
  const panel = await startPanel(config, opts.logger ?? quiet);
  const ca = panel.ctx.pki.ca.certPem;
  const tokens = new Map<string, string>();
  const token = (role: 'admin' | 'operator' | 'viewer'): string => {
    let t = tokens.get(role);
    if (!t) {
      t = panel.ctx.apiTokens.create({ name: `test-${role}`, role, createdBy: null, expiresAt: null }).token;
      tokens.set(role, t);
    }
    return t;
  };
  const agents: RunningAgent[] = [];
  const request: TestPanel['request'] = (method, urlPath, opts = {}) =>
    new Promise((resolve, reject) => {
      const auth = opts.token === null ? undefined : (opts.token ?? token('admin'));
      const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
      const req = https.request(
        `${panel.url}${urlPath}`,
        {
          method,
          ca,
          headers: {
            ...(auth ? { authorization: `Bearer ${auth}` } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...opts.headers,
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* not JSON */
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed as never, text });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return {
    panel,
    url: panel.url,
    dataDir,
    adminToken: token('admin'),
    token,
    request,
    async addSandboxHost(hostId, opts = {}) {
      const sandboxDir = opts.sandboxDir ?? mkdtempSync(path.join(os.tmpdir(), `ponio-sbx-${hostId}-`));
      if (!opts.sandboxDir) ownDirs.push(sandboxDir);
      chmodSync(sandboxDir, 0o755);
      const issued = await issueCertificate({
        ca: panel.ctx.pki.ca,
        role: { kind: 'host', hostId },
      });
      const etc = path.join(sandboxDir, 'etc/ponio-agent');
      mkdirSync(etc, { recursive: true });
      writeFileSync(path.join(etc, 'agent.crt'), issued.certPem);
      writeFileSync(path.join(etc, 'agent.key'), issued.keyPem, { mode: 0o600 });
      writeFileSync(path.join(etc, 'ca.crt'), ca);
      const cfgFile = path.join(etc, 'config.json');
      writeFileSync(
        cfgFile,
        JSON.stringify({ listen: '127.0.0.1:0', sandbox: sandboxDir, modules: opts.modules ?? {} }),
      );
      const agent = await startAgent(loadAgentConfig({ config: cfgFile }, {}), opts.logger ?? quiet);
      agents.push(agent);
      panel.ctx.hosts.repo.insert({ id: hostId, name: hostId, address: '127.0.0.1', port: agent.port });
      panel.ctx.hosts.repo.markEnrolled(hostId, issued.serial, issued.notAfter.getTime());
      const row = panel.ctx.hosts.repo.get(hostId);
      if (!row) throw new Error('host not inserted');
      panel.ctx.hosts.connect(row);
      await panel.ctx.hosts.manager.waitForState(hostId, 'online', 30_000);
      return { agent, sandboxDir };
    },
    async signedIn(username, role) {
      await panel.ctx.accounts.users.create({ username, password: TEST_USER_PASSWORD, role });
      const web = new WebClient(panel.url, ca);
      const r = await web.login(username, TEST_USER_PASSWORD);
      if (r.status !== 303)
        throw new Error(`login as ${username} failed: ${r.status} ${r.text.slice(0, 200)}`);
      return web;
    },
    async close() {
      await panel.close();
      for (const a of agents) await a.stop();
      // Leave nothing behind: the panel's data dir and the sandboxes this helper made.
      for (const d of [dataDir, ...ownDirs]) rmSync(d, { recursive: true, force: true });
    },
  };
}
