// Shared pieces of the MySQL/MariaDB system tests: the test's own connections to a sandbox
// MariaDB (root over its socket, users over TCP loopback), an agent config with only the mysql
// module, and a liveness check for the server's process.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import mysql, { type Connection } from 'mysql2/promise';
import { loadAgentConfig, type AgentConfig } from '../../agent/config.ts';
import type { AgentFiles } from './pki.ts';

/** A query as the sandbox's root over its unix socket (the test's own view of the server). */
export async function rootQuery<T = Record<string, unknown>>(
  socketPath: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = await mysql.createConnection({ socketPath, user: 'root' });
  try {
    const [rows] = await c.query(sql, params);
    return rows as T[];
  } finally {
    await c.end();
  }
}

/** Logs in as a user over TCP loopback: the open connection, or the driver's error code. */
export async function tcpConnect(
  port: number,
  user: string,
  password: string,
  database?: string,
): Promise<Connection | string> {
  try {
    return await mysql.createConnection({
      host: '127.0.0.1',
      port,
      user,
      password,
      connectTimeout: 5000,
      ...(database ? { database } : {}),
    });
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

/** Whether a login works (the connection is closed again), or the driver's error code. */
export async function tcpLogin(
  port: number,
  user: string,
  password: string,
  database?: string,
): Promise<true | string> {
  const c = await tcpConnect(port, user, password, database);
  if (typeof c === 'string') return c;
  await c.end();
  return true;
}

/** A sandbox agent config (listening on 127.0.0.1:0) whose only service module is mysql. */
export function mysqlOnlyAgentConfig(sandbox: string, files: AgentFiles): AgentConfig {
  const cfgFile = path.join(sandbox, 'agent.json');
  writeFileSync(cfgFile, JSON.stringify({ modules: { websites: false, ftp: false, firewall: false } }));
  return loadAgentConfig(
    {
      config: cfgFile,
      listen: '127.0.0.1:0',
      cert: files.certFile,
      key: files.keyFile,
      ca: files.caFile,
      sandbox,
    },
    {},
  );
}

/** Whether a process still exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
