/**
 * The schema of the PostgreSQL store, applied by `migrate` (./database.ts): ordered, append-only,
 * forward-only; the index + 1 is the version recorded in `schema_migrations`. Version 1 is the
 * SQLite store's schema 1-9 at once (the same tables and meaning; see docs/storage.md), with:
 * - epoch milliseconds and counts as BIGINT, JSON kept as the exact TEXT the store wrote;
 * - `user` (reserved in PostgreSQL) spelled `user_name`;
 * - the audit log in SQL (no segment files: a committed transaction is the durable write), one chain
 *   per `chain` name, its query columns as BYTEA so any text a client put into an id (NUL included)
 *   is kept byte for byte and verification compares it with the record exactly.
 */

/** One migration: its SQL (run in one transaction) and a name for `schema_migrations`. */
export interface Migration {
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'initial',
    sql: `
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  protocol_version TEXT NOT NULL,
  client_name TEXT,
  client_version TEXT,
  created_at BIGINT NOT NULL,
  closed_at BIGINT,
  close_reason TEXT
);
CREATE INDEX sessions_open ON sessions (created_at) WHERE closed_at IS NULL;

CREATE TABLE oauth (
  model TEXT NOT NULL,
  id TEXT NOT NULL,
  payload TEXT NOT NULL,
  expires_at BIGINT,
  grant_id TEXT,
  user_code TEXT,
  uid TEXT,
  consumed_at BIGINT,
  PRIMARY KEY (model, id)
);
CREATE INDEX oauth_grant ON oauth (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX oauth_uid ON oauth (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX oauth_user_code ON oauth (model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX oauth_expires ON oauth (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE users (
  username TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  external TEXT
);

CREATE TABLE audit_log (
  chain TEXT NOT NULL,
  seq BIGINT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  body TEXT NOT NULL,
  event_id BYTEA NOT NULL,
  time BIGINT NOT NULL,
  type BYTEA NOT NULL,
  request_id BYTEA,
  grant_id BYTEA,
  session_id BYTEA,
  agent BYTEA,
  user_name BYTEA,
  jti BYTEA,
  server BYTEA,
  tool BYTEA,
  decision BYTEA,
  PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_time ON audit_log (chain, time);
CREATE INDEX audit_grant ON audit_log (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX audit_session ON audit_log (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX audit_agent ON audit_log (agent) WHERE agent IS NOT NULL;
CREATE INDEX audit_user ON audit_log (user_name) WHERE user_name IS NOT NULL;
CREATE INDEX audit_jti ON audit_log (jti) WHERE jti IS NOT NULL;
CREATE INDEX audit_tool ON audit_log (tool) WHERE tool IS NOT NULL;
CREATE TABLE audit_checkpoints (
  chain TEXT NOT NULL,
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL,
  payload TEXT NOT NULL,
  signature TEXT NOT NULL,
  key_id TEXT NOT NULL,
  time BIGINT NOT NULL,
  PRIMARY KEY (chain, seq)
);

CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  agent TEXT NOT NULL,
  user_name TEXT,
  tenant TEXT,
  issuer TEXT NOT NULL,
  actors TEXT NOT NULL,
  principal_key TEXT NOT NULL,
  owner TEXT,
  tools TEXT,
  constraints TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  idle_timeout_ms BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  token_id TEXT,
  ended_at BIGINT,
  end_reason TEXT
);
CREATE INDEX grants_live ON grants (created_at) WHERE ended_at IS NULL;
CREATE INDEX grants_ended ON grants (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX grants_agent ON grants (agent) WHERE ended_at IS NULL;
CREATE INDEX grants_user ON grants (user_name) WHERE ended_at IS NULL;

CREATE TABLE leases (
  id TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL,
  service TEXT NOT NULL,
  credential TEXT NOT NULL,
  kind TEXT NOT NULL,
  agent TEXT NOT NULL,
  user_name TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  ended_at BIGINT,
  end_reason TEXT
);
CREATE INDEX leases_live ON leases (created_at) WHERE ended_at IS NULL;
CREATE INDEX leases_ended ON leases (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX leases_grant ON leases (grant_id) WHERE ended_at IS NULL;
CREATE TABLE credential_blocks (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (kind, name)
);

CREATE TABLE token_revocations (
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  not_before BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  recorded_at BIGINT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (kind, value)
);
CREATE INDEX token_revocations_recorded ON token_revocations (recorded_at);
CREATE INDEX token_revocations_expires ON token_revocations (expires_at);

CREATE TABLE approvals (
  id TEXT PRIMARY KEY,
  digest TEXT NOT NULL,
  state TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  user_name TEXT,
  tenant TEXT,
  actors TEXT NOT NULL,
  owner TEXT,
  server TEXT NOT NULL,
  tool TEXT NOT NULL,
  arguments TEXT NOT NULL,
  definition_hash TEXT NOT NULL,
  policies TEXT NOT NULL,
  attributes TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  decision TEXT,
  decided_at BIGINT,
  decided_by TEXT,
  reason TEXT,
  channel TEXT,
  consumed_at BIGINT,
  announced BOOLEAN NOT NULL DEFAULT false,
  -- insertion order, the tie-break of "newest first" (SQLite's rowid)
  n BIGSERIAL NOT NULL
);
CREATE INDEX approvals_digest ON approvals (digest, created_at);
CREATE INDEX approvals_open ON approvals (state, expires_at) WHERE state IN ('pending', 'approved');
CREATE INDEX approvals_unannounced ON approvals (decided_at) WHERE decision IS NOT NULL AND NOT announced;
CREATE INDEX approvals_created ON approvals (created_at, n);

CREATE TABLE definitions (
  server TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  hash TEXT NOT NULL,
  definition TEXT NOT NULL,
  status TEXT NOT NULL,
  findings TEXT NOT NULL,
  first_seen BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  decided_by TEXT,
  PRIMARY KEY (server, kind, name, hash)
);
CREATE UNIQUE INDEX definitions_pin ON definitions (server, kind, name) WHERE status = 'pinned';
CREATE INDEX definitions_updated ON definitions (updated_at);
`,
  },
];
