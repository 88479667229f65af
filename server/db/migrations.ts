/**
 * Schema migrations, applied in order of `id` inside one transaction each. Never edit a
 * migration that has shipped; add a new one. Ranges keep parallel work from colliding:
 * 1–99 core, 100–199 dashboard/accounts, 200–299 enrollment/PKI, 300+ domains.
 */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const coreMigrations: Migration[] = [
  {
    id: 1,
    name: 'core schema',
    sql: `
CREATE TABLE hosts (
  id TEXT PRIMARY KEY,                       -- used in the certificate URI urn:ponio:host:<id>
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  address TEXT NOT NULL,
  port INTEGER NOT NULL DEFAULT 7443 CHECK (port BETWEEN 1 AND 65535),
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'enrolled')),
  cert_serial TEXT,
  cert_not_after INTEGER,
  created_at INTEGER NOT NULL,
  enrolled_at INTEGER
);

CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  disabled INTEGER NOT NULL DEFAULT 0,
  must_change_password INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  password_changed_at INTEGER
);

CREATE TABLE sessions (
  sid TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,           -- sha256 of the token; the token is shown once
  prefix TEXT NOT NULL,                      -- first characters, to recognise a token in lists
  role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  last_used_at INTEGER
);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,                       -- username, token:<name>, cli, system
  actor_kind TEXT NOT NULL CHECK (actor_kind IN ('user', 'token', 'cli', 'system')),
  host_id TEXT,
  action TEXT NOT NULL,                      -- RPC event or panel action, e.g. 'create website', 'host add'
  params TEXT,                               -- JSON, secrets redacted
  ok INTEGER NOT NULL,
  error_code TEXT,
  message TEXT,
  duration_ms INTEGER
);
CREATE INDEX audit_at ON audit_log (at);
CREATE INDEX audit_host ON audit_log (host_id, at);

CREATE TABLE join_tokens (
  id INTEGER PRIMARY KEY,
  host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,           -- sha256; the token itself is never stored
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  revoked_at INTEGER
);

CREATE TABLE certificates (
  serial TEXT PRIMARY KEY,                   -- upper-case hex, no leading zeros
  kind TEXT NOT NULL CHECK (kind IN ('panel', 'host', 'server')),
  host_id TEXT,
  issued_at INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  revoked_at INTEGER,
  reason TEXT
);

CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`,
  },
  {
    id: 350,
    name: 'host labels, jobs (issue 19)',
    sql: `
CREATE TABLE host_labels (
  host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
  key TEXT NOT NULL,                         -- shared/validate/labels.ts
  value TEXT NOT NULL,
  PRIMARY KEY (host_id, key)
);
CREATE INDEX host_labels_kv ON host_labels (key, value);

CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,                  -- actor name of the creator
  actor TEXT NOT NULL,                       -- JSON Actor of the current run (creator, or who retried/resumed)
  event TEXT NOT NULL,
  params TEXT NOT NULL,                      -- JSON, secrets redacted (secrets live only in the running panel's memory)
  has_secrets INTEGER NOT NULL DEFAULT 0,
  target TEXT NOT NULL,                      -- JSON target as given
  settings TEXT NOT NULL,                    -- JSON: window, pauseMs, failThreshold, deadlineMs
  dry_run INTEGER NOT NULL DEFAULT 0,
  resolved INTEGER NOT NULL DEFAULT 1,       -- 0: queued by the CLI, the claiming panel resolves the target (it knows each host's hello)
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'stopped', 'cancelled', 'interrupted')),
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  runner TEXT,                               -- replica that claimed the job (atomic UPDATE … WHERE state = 'queued')
  lease_until INTEGER,                       -- the runner renews it; an expired lease means the runner is gone
  started_at INTEGER,
  finished_at INTEGER,
  message TEXT
);
CREATE INDEX jobs_state ON jobs (state, lease_until);

CREATE TABLE job_hosts (
  job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,                      -- start order
  host_id TEXT NOT NULL,
  host_name TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'ok', 'failed', 'unreachable', 'timeout', 'skipped')),
  attempts INTEGER NOT NULL DEFAULT 0,
  request_id TEXT,                           -- mutations: reused when retrying an unknown outcome
  error_code TEXT,
  message TEXT,
  data TEXT,                                 -- JSON reply data
  started_at INTEGER,
  finished_at INTEGER,
  PRIMARY KEY (job_id, seq)
);
CREATE INDEX job_hosts_host ON job_hosts (host_id);

ALTER TABLE audit_log ADD COLUMN job_id INTEGER;
CREATE INDEX audit_job ON audit_log (job_id);
`,
  },
  {
    id: 210,
    name: 'host connection mode',
    // forward: the panel dials the agent at address:port; reverse: the agent dials the panel's
    // agent listener (address and port unused, kept '' and 7443).
    sql: `ALTER TABLE hosts ADD COLUMN mode TEXT NOT NULL DEFAULT 'forward' CHECK (mode IN ('forward', 'reverse'));`,
  },
  {
    id: 16,
    name: 'audit: requestId and outcome of host calls (issue 16)',
    sql: `
ALTER TABLE audit_log ADD COLUMN request_id TEXT;
ALTER TABLE audit_log ADD COLUMN outcome TEXT;   -- NULL (settled when written) or 'unknown' until resolved
CREATE INDEX audit_unknown ON audit_log (outcome) WHERE outcome IS NOT NULL;
`,
  },
  {
    id: 420,
    name: 'host-scoped grants and token selectors (issue 24)',
    // A user without grants has users.role on every host; with grants, only where one matches
    // (server/auth/scope.ts). A token's selector narrows it further.
    sql: `
CREATE TABLE user_grants (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('operator', 'viewer')),
  selector TEXT                              -- NULL: all hosts; else shared/validate/labels.ts
);
CREATE INDEX user_grants_user ON user_grants (user_id);
ALTER TABLE api_tokens ADD COLUMN selector TEXT;
`,
  },
  {
    id: 421,
    name: 'two-factor sign-in: TOTP, recovery codes, WebAuthn credentials (issue 24)',
    sql: `
CREATE TABLE user_totp (
  user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  secret_enc TEXT NOT NULL,                  -- AES-256-GCM under the data dir's two-factor.key (server/auth/secret-box.ts)
  created_at INTEGER NOT NULL,
  confirmed_at INTEGER,                      -- NULL: enrolment started, first code not yet entered
  last_step INTEGER                          -- last accepted RFC 6238 time step: a code is never accepted twice
);
CREATE TABLE user_recovery_codes (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,                   -- HMAC-SHA256 under a panel secret; the codes are shown once
  used_at INTEGER
);
CREATE INDEX user_recovery_codes_user ON user_recovery_codes (user_id);
CREATE TABLE user_webauthn (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  credential_id TEXT NOT NULL UNIQUE,        -- base64url
  public_key TEXT NOT NULL,                  -- base64url COSE key
  counter INTEGER NOT NULL DEFAULT 0,
  transports TEXT,                           -- JSON array
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
);
CREATE INDEX user_webauthn_user ON user_webauthn (user_id);
CREATE TABLE webauthn_challenges (
  challenge TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose TEXT NOT NULL CHECK (purpose IN ('register', 'sign-in')),
  expires_at INTEGER NOT NULL
);
`,
  },
];
