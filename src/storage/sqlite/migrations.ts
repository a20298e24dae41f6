/** The schema of the gateway's SQLite store, applied by `migrate` (./database.ts) when the store opens. */

/** Ordered, append-only migrations; the index + 1 is the schema version. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     protocol_version TEXT NOT NULL,
     client_name TEXT,
     client_version TEXT,
     created_at INTEGER NOT NULL,
     closed_at INTEGER,
     close_reason TEXT
   );
   CREATE INDEX sessions_open ON sessions (closed_at, created_at);`,
  // 2: the embedded authorization server (oidc-provider models) and local users.
  `CREATE TABLE oauth (
     model TEXT NOT NULL,
     id TEXT NOT NULL,
     payload TEXT NOT NULL,
     expires_at INTEGER,
     grant_id TEXT,
     user_code TEXT,
     uid TEXT,
     consumed_at INTEGER,
     PRIMARY KEY (model, id)
   );
   CREATE INDEX oauth_grant ON oauth (grant_id) WHERE grant_id IS NOT NULL;
   CREATE INDEX oauth_uid ON oauth (model, uid) WHERE uid IS NOT NULL;
   CREATE INDEX oauth_user_code ON oauth (model, user_code) WHERE user_code IS NOT NULL;
   CREATE INDEX oauth_expires ON oauth (expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE users (
     username TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );`,
  // 3: the tamper-evident audit log (src/audit/). `body` is what is hashed; the
  // other columns are query copies that verification checks against it.
  `CREATE TABLE audit_log (
     seq INTEGER PRIMARY KEY,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL,
     body TEXT NOT NULL,
     event_id TEXT NOT NULL,
     time INTEGER NOT NULL,
     type TEXT NOT NULL,
     request_id TEXT,
     grant_id TEXT,
     session_id TEXT,
     agent TEXT,
     user TEXT,
     jti TEXT,
     server TEXT,
     tool TEXT,
     decision TEXT
   );
   CREATE INDEX audit_time ON audit_log (time);
   CREATE INDEX audit_grant ON audit_log (grant_id) WHERE grant_id IS NOT NULL;
   CREATE INDEX audit_session ON audit_log (session_id) WHERE session_id IS NOT NULL;
   CREATE INDEX audit_agent ON audit_log (agent) WHERE agent IS NOT NULL;
   CREATE INDEX audit_user ON audit_log (user) WHERE user IS NOT NULL;
   CREATE INDEX audit_jti ON audit_log (jti) WHERE jti IS NOT NULL;
   CREATE INDEX audit_tool ON audit_log (tool) WHERE tool IS NOT NULL;
   CREATE TABLE audit_checkpoints (
     seq INTEGER PRIMARY KEY,
     hash TEXT NOT NULL,
     payload TEXT NOT NULL,
     signature TEXT NOT NULL,
     key_id TEXT NOT NULL,
     time INTEGER NOT NULL
   );`,
  // 4: grants (src/grants/).
  `CREATE TABLE grants (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     agent TEXT NOT NULL,
     user TEXT,
     tenant TEXT,
     issuer TEXT NOT NULL,
     actors TEXT NOT NULL,
     principal_key TEXT NOT NULL,
     owner TEXT,
     tools TEXT,
     constraints TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     idle_timeout_ms INTEGER NOT NULL,
     created_by TEXT NOT NULL,
     token_id TEXT,
     ended_at INTEGER,
     end_reason TEXT
   );
   CREATE INDEX grants_live ON grants (ended_at, expires_at);
   CREATE INDEX grants_agent ON grants (agent) WHERE ended_at IS NULL;
   CREATE INDEX grants_user ON grants (user) WHERE ended_at IS NULL;`,
  // 5: credential leases and kill switches (src/credentials/).
  `CREATE TABLE leases (
     id TEXT PRIMARY KEY,
     grant_id TEXT NOT NULL,
     service TEXT NOT NULL,
     credential TEXT NOT NULL,
     kind TEXT NOT NULL,
     agent TEXT NOT NULL,
     user TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     ended_at INTEGER,
     end_reason TEXT
   );
   CREATE INDEX leases_live ON leases (ended_at, expires_at);
   CREATE INDEX leases_grant ON leases (grant_id) WHERE ended_at IS NULL;
   CREATE TABLE credential_blocks (
     kind TEXT NOT NULL,
     name TEXT NOT NULL,
     reason TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (kind, name)
   );`,
  // 6: users of the upstream identity provider (auth.embedded.upstreamIdp): their binding to the
  // provider's (iss, sub), tenant and groups, as JSON; NULL for local users.
  `ALTER TABLE users ADD COLUMN external TEXT;`,
  // 7: the token revocation list (src/auth/revocation.ts): one row per kind and value.
  `CREATE TABLE token_revocations (
     kind TEXT NOT NULL,
     value TEXT NOT NULL,
     not_before INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     recorded_at INTEGER NOT NULL,
     reason TEXT NOT NULL,
     PRIMARY KEY (kind, value)
   );
   CREATE INDEX token_revocations_recorded ON token_revocations (recorded_at);
   CREATE INDEX token_revocations_expires ON token_revocations (expires_at);`,
  // 8: approval requests for high-risk calls (src/approvals/): bound to a digest of (grant, tool,
  // definition hash, arguments), decided once, consumed once.
  `CREATE TABLE approvals (
     id TEXT PRIMARY KEY,
     digest TEXT NOT NULL,
     state TEXT NOT NULL,
     grant_id TEXT NOT NULL,
     session_id TEXT NOT NULL,
     agent TEXT NOT NULL,
     user TEXT,
     tenant TEXT,
     actors TEXT NOT NULL,
     owner TEXT,
     server TEXT NOT NULL,
     tool TEXT NOT NULL,
     arguments TEXT NOT NULL,
     definition_hash TEXT NOT NULL,
     policies TEXT NOT NULL,
     attributes TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     decision TEXT,
     decided_at INTEGER,
     decided_by TEXT,
     reason TEXT,
     channel TEXT,
     consumed_at INTEGER,
     announced INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX approvals_digest ON approvals (digest, created_at);
   CREATE INDEX approvals_open ON approvals (state, expires_at) WHERE state IN ('pending', 'approved');
   CREATE INDEX approvals_unannounced ON approvals (decided_at) WHERE decision IS NOT NULL AND announced = 0;
   CREATE INDEX approvals_created ON approvals (created_at);`,
  // 9: tool-definition pinning (src/definitions/): every version of every upstream definition seen,
  // one pin per server, kind and name.
  `CREATE TABLE definitions (
     server TEXT NOT NULL,
     kind TEXT NOT NULL,
     name TEXT NOT NULL,
     hash TEXT NOT NULL,
     definition TEXT NOT NULL,
     status TEXT NOT NULL,
     findings TEXT NOT NULL,
     first_seen INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     decided_by TEXT,
     PRIMARY KEY (server, kind, name, hash)
   );
   CREATE UNIQUE INDEX definitions_pin ON definitions (server, kind, name) WHERE status = 'pinned';
   CREATE INDEX definitions_updated ON definitions (updated_at);`,
];
