import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../../agent/main.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { issueCertificate, type IssuedCert } from '../../shared/pki/index.ts';
import type { TestPanel } from './panel.ts';
import { quietLogger } from './panel-link.ts';
import { tempDir } from './tmp.ts';

/** The wss:// URL of a test panel's agent listener. */
export function listenerUrl(t: TestPanel): string {
  const l = t.panel.agentListener;
  if (!l) throw new Error('the test panel has no agent listener');
  return `wss://127.0.0.1:${l.port}`;
}

/** Records an enrolled reverse-mode host in the panel (as enrollment would) and issues its certificate. */
export async function recordReverseHost(t: TestPanel, hostId: string): Promise<IssuedCert> {
  const issued = await issueCertificate({ ca: t.panel.ctx.pki.ca, role: { kind: 'host', hostId } });
  const repo = t.panel.ctx.hosts.repo;
  repo.insert({ id: hostId, name: hostId, address: '', port: 7443, mode: 'reverse' });
  repo.markEnrolled(hostId, issued.serial, issued.notAfter.getTime());
  t.panel.ctx.db
    .prepare(
      "INSERT INTO certificates (serial, kind, host_id, issued_at, not_after) VALUES (?, 'host', ?, ?, ?)",
    )
    .run(issued.serial, hostId, Date.now(), issued.notAfter.getTime());
  const row = repo.get(hostId);
  if (!row) throw new Error('host not inserted');
  t.panel.ctx.hosts.connect(row);
  return issued;
}

/**
 * An in-process agent in sandbox mode that dials `connect` with the given certificate (reverse
 * mode); the service modules are off unless `modules` turns them on.
 */
export async function startReverseAgent(
  t: TestPanel,
  cert: IssuedCert,
  connect: string[],
  modules: Record<string, unknown> = { websites: false, ftp: false, mysql: false, firewall: false },
): Promise<{ agent: RunningAgent; dir: string }> {
  const dir = tempDir('ponio-rev-');
  const etc = path.join(dir, 'etc/ponio-agent');
  mkdirSync(etc, { recursive: true });
  writeFileSync(path.join(etc, 'agent.crt'), cert.certPem);
  writeFileSync(path.join(etc, 'agent.key'), cert.keyPem, { mode: 0o600 });
  writeFileSync(path.join(etc, 'ca.crt'), t.panel.ctx.pki.ca.certPem);
  const cfgFile = path.join(etc, 'config.json');
  writeFileSync(cfgFile, JSON.stringify({ connect, sandbox: dir, modules }));
  const agent = await startAgent(loadAgentConfig({ config: cfgFile }, {}), quietLogger);
  return { agent, dir };
}
