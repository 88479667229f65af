import { z } from 'zod';

export const MODULE_NAMES = ['system', 'websites', 'ftp', 'mysql', 'firewall', 'backups'] as const;
export const moduleNameSchema = z.enum(MODULE_NAMES);
export type ModuleName = z.infer<typeof moduleNameSchema>;

/**
 * The state of the service behind a module: a sandbox's private Apache/proftpd/MariaDB is
 * supervised (restarted when it dies, `failed` after too many restarts); in system mode the agent
 * only reports a dead service (`down`), systemd owns it.
 */
export const serviceStatusSchema = z.strictObject({
  service: z.string().max(64),
  state: z.enum(['running', 'restarting', 'failed', 'stopped', 'down']),
  restarts: z.number().int().nonnegative(),
  detail: z.string().max(2000).optional(),
});
export type ServiceStatus = z.infer<typeof serviceStatusSchema>;

export const moduleStatusSchema = z.strictObject({
  name: moduleNameSchema,
  available: z.boolean(),
  reason: z.string().optional(),
  service: serviceStatusSchema.optional(),
});
export type ModuleStatus = z.infer<typeof moduleStatusSchema>;

/**
 * Request-envelope features an agent understands, announced in its hello. The panel sends an
 * envelope field only to agents that announce it, so a panel upgraded before its agents keeps
 * working with them (an older agent's strict schemas refuse unknown keys).
 * - `deadline`: the `deadlineMs` envelope field and the `call outcome` event.
 */
export const AGENT_FEATURES = ['deadline'] as const;
export type AgentFeature = (typeof AGENT_FEATURES)[number];

/** Sent by the agent right after a panel connects (event `hello`, no ack). */
export const helloSchema = z.strictObject({
  protocolVersion: z.number().int().positive(),
  agentVersion: z.string(),
  hostname: z.string(),
  mode: z.enum(['system', 'sandbox']),
  modules: z.array(moduleStatusSchema),
  /** Absent from agents older than the `deadline` feature (see AGENT_FEATURES). */
  features: z.array(z.string().max(64)).max(64).optional(),
});
export type Hello = z.infer<typeof helloSchema>;

/** Agent → panel notifications (no ack): progress and state changes. */
export const agentEventSchema = z.strictObject({
  topic: z.string().max(100),
  data: z.unknown(),
});
export type AgentEvent = z.infer<typeof agentEventSchema>;

export const HELLO_EVENT = 'hello';
export const AGENT_EVENT = 'event';
