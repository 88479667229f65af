import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { sandboxLayout, systemLayout, type HostLayout } from './os/layout.ts';

/** A problem with the agent's configuration: printed as one line, exit code 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const listenSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+|\*):[0-9]{1,5}$/, 'must be HOST:PORT, e.g. 0.0.0.0:7443')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be 0–65535');

/** A panel agent-listener URL: wss://HOST:PORT, nothing else (no path, no credentials). */
const connectUrlSchema = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (
      u.protocol === 'wss:' &&
      u.hostname !== '' &&
      !u.username &&
      !u.password &&
      u.search === '' &&
      u.hash === '' &&
      (u.pathname === '/' || u.pathname === '')
    );
  } catch {
    return false;
  }
}, "must be wss://HOST:PORT (the panel's agent listener), e.g. wss://panel.example:7444");

export const agentConfigSchema = z.strictObject({
  listen: listenSchema.default('0.0.0.0:7443'),
  /**
   * Reverse mode: the panel's agent listener(s) to dial, tried in turn; the agent then opens no
   * listening port (`listen` is ignored). A string may list several, separated by commas.
   */
  connect: z
    .union([z.array(connectUrlSchema), z.string()])
    .transform((v) =>
      Array.isArray(v)
        ? v
        : v
            .split(',')
            .map((x) => x.trim())
            .filter((x) => x !== ''),
    )
    .pipe(z.array(connectUrlSchema).max(16))
    .optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  ca: z.string().min(1).optional(),
  sandbox: z.string().min(1).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Per-module settings (owned by each module). */
  modules: z.record(z.string(), z.unknown()).default({}),
});
export type AgentConfigFile = z.input<typeof agentConfigSchema>;

export interface AgentConfig {
  host: string;
  port: number;
  /** Reverse mode when not empty: dial these (wss://) instead of listening. */
  connect: string[];
  certFile: string;
  keyFile: string;
  caFile: string;
  revokedFile: string;
  layout: HostLayout;
  logLevel: string;
  modules: Record<string, unknown>;
}

const ENV_KEYS: Record<string, keyof AgentConfigFile> = {
  PONIO_AGENT_LISTEN: 'listen',
  PONIO_AGENT_CONNECT: 'connect',
  PONIO_AGENT_CERT: 'cert',
  PONIO_AGENT_KEY: 'key',
  PONIO_AGENT_CA: 'ca',
  PONIO_AGENT_SANDBOX: 'sandbox',
  PONIO_AGENT_LOG_LEVEL: 'logLevel',
};

const FLAG_NAMES: Partial<Record<keyof AgentConfigFile, string>> = {
  listen: '--listen',
  connect: '--connect',
  cert: '--cert',
  key: '--key',
  ca: '--ca',
  sandbox: '--sandbox',
  logLevel: '--log-level',
};

/** Checks a HOST:PORT listen address; the same rule as the config's `listen`. Throws ConfigError. */
export function checkListen(value: string, where: string): void {
  const r = listenSchema.safeParse(value);
  if (!r.success)
    throw new ConfigError(
      `invalid ${where} ${JSON.stringify(value)}: ${r.error.issues[0]?.message ?? 'invalid'}`,
    );
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  try {
    const v: unknown = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`config file ${file} is not a JSON object: ${(e as Error).message}`);
  }
}

/**
 * Resolves the configuration: command-line flags override environment variables
 * (PONIO_AGENT_*), which override the JSON config file (--config or PONIO_AGENT_CONFIG), which
 * overrides the defaults. Throws ConfigError with one clear sentence.
 */
export function loadAgentConfig(
  flags: Partial<Record<keyof AgentConfigFile | 'config', string | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): AgentConfig {
  const configFile = flags.config ?? env.PONIO_AGENT_CONFIG;
  const merged: Record<string, unknown> = configFile ? readConfigFile(configFile) : {};
  // Where each setting came from, so an error names the flag, variable or file to fix.
  const source: Record<string, string> = {};
  if (configFile) for (const k of Object.keys(merged)) source[k] = `config file ${configFile}`;
  for (const [envKey, key] of Object.entries(ENV_KEYS)) {
    const v = env[envKey];
    if (v === undefined || v === '') continue;
    merged[key] = v;
    source[key] = envKey;
  }
  for (const [k, v] of Object.entries(flags)) {
    if (k === 'config' || v === undefined) continue;
    merged[k] = v;
    source[k] = FLAG_NAMES[k as keyof AgentConfigFile] ?? k;
  }
  const parsed = agentConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    const where = i && i.path.length > 0 ? `${i.path.join('.')}: ` : '';
    const what =
      i?.code === 'unrecognized_keys' ? `unknown setting(s) ${i.keys.join(', ')}` : (i?.message ?? 'invalid');
    const top = i?.code === 'unrecognized_keys' ? i.keys[0] : i?.path[0];
    const from = typeof top === 'string' ? source[top] : undefined;
    throw new ConfigError(`invalid agent configuration: ${where}${what}${from ? ` (from ${from})` : ''}`);
  }
  const c = parsed.data;
  const layout = c.sandbox ? sandboxLayout(c.sandbox) : systemLayout();
  const base = configFile && !c.sandbox ? path.dirname(path.resolve(configFile)) : layout.configDir;
  const hostPart = c.listen.slice(0, c.listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return {
    host: hostPart === '*' ? '0.0.0.0' : hostPart,
    port: Number(c.listen.slice(c.listen.lastIndexOf(':') + 1)),
    connect: c.connect ?? [],
    certFile: path.resolve(c.cert ?? path.join(base, 'agent.crt')),
    keyFile: path.resolve(c.key ?? path.join(base, 'agent.key')),
    caFile: path.resolve(c.ca ?? path.join(base, 'ca.crt')),
    revokedFile: path.join(layout.stateDir, 'revoked.json'),
    layout,
    logLevel: c.logLevel,
    modules: c.modules,
  };
}

/**
 * Reads the certificate files named by the config and checks that they can serve: each file is
 * readable PEM that parses, and (unless `pair: false`) the certificate belongs to the key. Any
 * problem is a ConfigError. `pair: false` is the check made before the agent takes its state
 * lock: an install a kill interrupted can leave a certificate for the next key (completed once the
 * lock is held), never a missing, unreadable or unparsable file (each is written whole).
 */
export function readTlsFiles(
  cfg: AgentConfig,
  opts: { pair?: boolean } = {},
): { certPem: string; keyPem: string; caPem: string } {
  const read = (file: string, what: string): string => {
    try {
      const text = readFileSync(file, 'utf8');
      if (!text.includes('-----BEGIN')) throw new ConfigError(`${what} ${file} is not a PEM file`);
      return text;
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  };
  const parseCert = (pem: string, file: string, what: string): X509Certificate => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new ConfigError(`${what} ${file} is not a valid X.509 certificate`);
    }
  };
  const certPem = read(cfg.certFile, 'certificate');
  const keyPem = read(cfg.keyFile, 'key');
  const caPem = read(cfg.caFile, 'CA certificate');
  const cert = parseCert(certPem, cfg.certFile, 'certificate');
  parseCert(caPem, cfg.caFile, 'CA certificate');
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new ConfigError(`key ${cfg.keyFile} is not a valid private key`);
  }
  if (opts.pair !== false && !cert.checkPrivateKey(key))
    throw new ConfigError(`certificate ${cfg.certFile} and key ${cfg.keyFile} do not match`);
  return { certPem, keyPem, caPem };
}
