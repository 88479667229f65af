import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';

export class PanelConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PanelConfigError';
  }
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** trustProxy → false or the list of proxies; a string is the sentence why it is refused. */
export function parseTrustProxy(v: unknown): false | string[] | string {
  if (v === false || v === 'false' || v === '') return false;
  if (v === true || v === 'true' || typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v)))
    return 'name the proxies (addresses, subnets or loopback); true or a hop count would believe X-Forwarded-For from any client and disable the per-address rate limits';
  const list = (Array.isArray(v) ? v : String(v).split(',')).map((e) => String(e).trim()).filter(Boolean);
  if (list.length === 0) return false;
  for (const e of list) {
    const [ip, bits, extra] = e.split('/');
    const family = isIP(ip ?? '');
    const okBits =
      bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!PROXY_NAMES.has(e) && (family === 0 || !okBits || extra !== undefined))
      return `${JSON.stringify(e.slice(0, 60))} is not an address, a subnet or loopback / linklocal / uniquelocal`;
  }
  return list;
}

/** Default of the agent listener (reverse mode): every address, TCP port 7444. */
export const DEFAULT_AGENT_LISTEN = '0.0.0.0:7444';

/** `HOST:PORT` (IPv6 in brackets) → its parts, or null. */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(value);
  if (!m?.[1] || !m[2]) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

export const panelConfigSchema = z.strictObject({
  /** HTTPS listen address. */
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8443),
  /** SQLite database, PKI and sandbox live here. */
  dataDir: z.string().min(1).default('./data'),
  /** The address agents and browsers use to reach the panel (put in the enrollment command). */
  publicUrl: z.url().optional(),
  /** Extra DNS names / IPs for the panel's HTTPS certificate. */
  serverNames: z.array(z.string().min(1)).default([]),
  /** Your own HTTPS certificate instead of one from the panel CA. */
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  /**
   * The reverse proxies whose X-Forwarded-For is believed (Express "trust proxy"): addresses,
   * subnets or loopback / linklocal / uniquelocal, as a list or comma-separated; false = none.
   * `true` and hop counts are refused: they would believe any client's header and so turn the
   * per-address rate limits off.
   */
  trustProxy: z
    .union([z.boolean(), z.string(), z.number(), z.array(z.string())])
    .default(false)
    .transform((v, ctx): false | string[] => {
      const r = parseTrustProxy(v);
      if (typeof r === 'string') {
        ctx.addIssue({ code: 'custom', message: r });
        return z.NEVER;
      }
      return r;
    }),
  /**
   * The agent release the panel serves to new hosts (GET /agent/install.sh, /agent/ponio-agent.cjs):
   * a directory with ponio-agent.cjs, install-agent.sh and ponio-agent.service. Default: agent/
   * next to the built panel, or dist/agent in a development checkout (docs/install.md).
   */
  agentDir: z.string().min(1).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Lifetime of host certificates (renewed at two thirds); 90 days. Short values are for tests. */
  hostCertLifetimeSeconds: z.coerce
    .number()
    .int()
    .min(10)
    .max(397 * 86_400)
    .default(90 * 86_400),
  /**
   * Bearer token Prometheus sends to GET /metrics (docs/install.md, "Monitoring"); or
   * `metricsTokenFile`, a file holding it. Neither set: /metrics is turned off (404).
   */
  metricsToken: z
    .string()
    .min(24, 'must be at least 24 characters')
    .max(512)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
  metricsTokenFile: z.string().min(1).optional(),
  /** How often the panel looks for certificates due for renewal. */
  renewalCheckSeconds: z.coerce.number().min(0.2).max(86_400).default(3_600),
  /**
   * A running job's lease (server/jobs/): the panel that runs it renews it; a job whose lease ran
   * out (its panel died) is marked interrupted. Short values are for tests.
   */
  jobLeaseSeconds: z.coerce.number().min(0.5).max(3_600).default(15),
  /**
   * The URL reverse-mode agents dial (written into their config at enrollment), when it is not
   * wss://<publicUrl host>:<agent listener port> (e.g. behind NAT or a TCP proxy).
   */
  agentPublicUrl: z
    .url({ protocol: /^wss$/, error: 'must be a wss:// URL, e.g. wss://panel.example:7444' })
    .optional(),
  /**
   * Where reverse-mode agents dial in (HOST:PORT, mutual TLS), or `off`. Forward-mode hosts do
   * not need it.
   */
  agentListen: z
    .string()
    .default(DEFAULT_AGENT_LISTEN)
    .refine((v) => v === 'off' || parseHostPort(v) !== null, {
      message: 'must be HOST:PORT (e.g. 0.0.0.0:7444, [::]:7444) or off',
    }),
});
export type PanelConfigInput = z.input<typeof panelConfigSchema>;
export type PanelConfig = z.output<typeof panelConfigSchema>;

const ENV: Record<string, keyof PanelConfigInput> = {
  PONIO_PANEL_HOST: 'host',
  PONIO_PANEL_PORT: 'port',
  PONIO_PANEL_DATA_DIR: 'dataDir',
  PONIO_PANEL_PUBLIC_URL: 'publicUrl',
  PONIO_PANEL_TLS_CERT: 'tlsCert',
  PONIO_PANEL_TLS_KEY: 'tlsKey',
  PONIO_PANEL_TRUST_PROXY: 'trustProxy',
  PONIO_PANEL_LOG_LEVEL: 'logLevel',
  PONIO_PANEL_AGENT_DIR: 'agentDir',
  PONIO_PANEL_METRICS_TOKEN: 'metricsToken',
  PONIO_PANEL_METRICS_TOKEN_FILE: 'metricsTokenFile',
  PONIO_PANEL_AGENT_LISTEN: 'agentListen',
  PONIO_PANEL_AGENT_PUBLIC_URL: 'agentPublicUrl',
};

/** Defaults < JSON config file < PONIO_PANEL_* environment < flags. Throws PanelConfigError. */
export function loadPanelConfig(
  flags: Partial<Record<keyof PanelConfigInput | 'config', unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): PanelConfig {
  const merged: Record<string, unknown> = {};
  const file = (flags.config as string | undefined) ?? env.PONIO_PANEL_CONFIG;
  if (file) {
    try {
      Object.assign(merged, JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>);
    } catch (e) {
      throw new PanelConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
    }
  }
  for (const [k, key] of Object.entries(ENV)) if (env[k] !== undefined && env[k] !== '') merged[key] = env[k];
  for (const [k, v] of Object.entries(flags)) if (k !== 'config' && v !== undefined) merged[k] = v;
  const r = panelConfigSchema.safeParse(merged);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new PanelConfigError(
      `invalid panel configuration: ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`,
    );
  }
  if ((r.data.tlsCert === undefined) !== (r.data.tlsKey === undefined))
    throw new PanelConfigError('invalid panel configuration: tlsCert and tlsKey go together');
  return { ...r.data, ...metricsTokenFrom(r.data), dataDir: path.resolve(r.data.dataDir) };
}

/** The metrics token, read from metricsTokenFile when that is set (one of the two at most). */
function metricsTokenFrom(c: PanelConfig): { metricsToken?: string } {
  if (c.metricsTokenFile === undefined)
    return c.metricsToken === undefined ? {} : { metricsToken: c.metricsToken };
  if (c.metricsToken !== undefined)
    throw new PanelConfigError('invalid panel configuration: set metricsToken or metricsTokenFile, not both');
  let token: string;
  try {
    token = readFileSync(c.metricsTokenFile, 'utf8').trim();
  } catch (e) {
    throw new PanelConfigError(`cannot read metricsTokenFile ${c.metricsTokenFile}: ${(e as Error).message}`);
  }
  if (!/^[\x21-\x7e]{24,512}$/.test(token))
    throw new PanelConfigError(
      `invalid panel configuration: metricsTokenFile ${c.metricsTokenFile} must hold one token of 24 to 512 characters without spaces`,
    );
  return { metricsToken: token };
}
