import type { Logger } from 'pino';
import type { Db } from './db/database.ts';
import type { AuditLog } from './db/audit.ts';
import type { PanelConfig } from './config.ts';
import type { PanelEvents } from './events.ts';
import type { HostRegistry } from './hosts/registry.ts';
import type { PanelPki } from './hosts/pki-store.ts';
import type { HostActions } from './http/host-actions.ts';
import type { ApiTokens } from './auth/api-tokens.ts';
import type { Enrollment } from './hosts/enrollment.ts';
import type { Accounts } from './auth/accounts.ts';
import type { HostLabelsRepo } from './db/labels.ts';
import type { Jobs } from './jobs/engine.ts';
import type { Observability } from './metrics/index.ts';
import type { HostScopes } from './auth/host-scope.ts';
import type { TwoFactor } from './auth/two-factor.ts';

/**
 * Everything a route, page or CLI command of the panel may use. Built once in server/main.ts
 * and passed down explicitly (no singletons).
 */
export interface PanelContext {
  config: PanelConfig;
  logger: Logger;
  db: Db;
  audit: AuditLog;
  events: PanelEvents;
  pki: PanelPki;
  hosts: HostRegistry;
  actions: HostActions;
  /** Host labels (key=value), for targets. */
  labels: HostLabelsRepo;
  /** Fan-out jobs (server/jobs/). */
  jobs: Jobs;
  apiTokens: ApiTokens;
  /** Dashboard users and sessions. */
  accounts: Accounts;
  /** Which hosts an actor sees and with which role (grants, token selectors, labels). */
  scopes: HostScopes;
  /** Two-factor sign-in: TOTP, passkeys, recovery codes, the "require" setting. */
  twoFactor: TwoFactor;
  /** Host lifecycle: add + join token, enroll, re-issue token, remove, renew, rotate (issue 3). */
  enrollment?: Enrollment;
  /** Metrics (jobs record with `observability.metrics.jobs`), readiness probes, /healthz /readyz /metrics. */
  observability: Observability;
  /** The URL agents and browsers use to reach the panel. */
  publicUrl(): string;
}
