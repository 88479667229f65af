import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { ROOT, spawnAgent, type AgentProcess } from './agent-process.ts';
import { tempDir } from './tmp.ts';

/** A free TCP port on 127.0.0.1 (the agent will listen there; the panel's host record names it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A sandbox dir whose agent config turns the service modules off, so the enrollment tests
 * start no Apache/proftpd/MariaDB/netns (those domains are covered by their own tests).
 */
export function lightSandbox(prefix: string): { dir: string; configDir: string; configFile: string } {
  const dir = tempDir(`ponio-enr-${prefix}-`);
  const configDir = path.join(dir, 'etc/ponio-agent');
  mkdirSync(configDir, { recursive: true });
  const configFile = path.join(configDir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({ modules: { websites: false, ftp: false, mysql: false, firewall: false } }),
  );
  return { dir, configDir, configFile };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/ponio-agent.js ARGS` as a real process. */
export function runAgentCli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin/ponio-agent.js'), ...args],
      { cwd: ROOT, timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Splits the enrollment command the panel shows into its parts (and checks its exact form). */
export function parseEnrollCommand(command: string): { panel: string; token: string; caPin: string } {
  const m = /^ponio-agent enroll --panel (https:\/\/\S+) --token (\S+) --ca-pin (sha256:[0-9a-f]{64})$/.exec(
    command,
  );
  if (!m?.[1] || !m[2] || !m[3]) throw new Error(`unexpected enrollment command: ${command}`);
  return { panel: m[1], token: m[2], caPin: m[3] };
}

/** Runs the command the panel showed, in sandbox mode, listening on 127.0.0.1:PORT. */
export function enrollWith(
  command: string,
  sandboxDir: string,
  port: number,
  extra: string[] = [],
): Promise<CliResult> {
  const args = command.split(' ').slice(1); // drop "ponio-agent"
  return runAgentCli([...args, '--sandbox', sandboxDir, '--listen', `127.0.0.1:${port}`, ...extra]);
}

/** `ponio-agent serve --config FILE` as a real process (waits for "agent ready"). */
export function serveAgent(configFile: string): Promise<AgentProcess> {
  return spawnAgent(['--config', configFile]);
}
