-- The SQLite schema of the Go llm-proxy (sofatutor/llm-proxy, scripts/schema.sql: its SQLite databases are
-- created from that file, not from migrations). Used by tests/integration/migrate_import_reference_test.cpp to
-- build a reference database. Timestamps are DATETIME text as go-sqlite3 writes them, booleans 0/1.
CREATE TABLE projects (
  id             TEXT PRIMARY KEY,
  name           TEXT NOT NULL UNIQUE,
  api_key        TEXT NOT NULL,
  is_active      BOOLEAN NOT NULL DEFAULT 1,
  deactivated_at DATETIME,
  created_at     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_projects_name ON projects (name);

CREATE TABLE tokens (
  id              TEXT PRIMARY KEY,
  token           TEXT NOT NULL UNIQUE,
  project_id      TEXT NOT NULL,
  expires_at      DATETIME,
  is_active       BOOLEAN NOT NULL DEFAULT 1,
  deactivated_at  DATETIME,
  request_count   INTEGER NOT NULL DEFAULT 0,
  max_requests    INTEGER,
  created_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_used_at    DATETIME,
  cache_hit_count INTEGER NOT NULL DEFAULT 0,
  FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
);
CREATE INDEX idx_tokens_token ON tokens (token);
CREATE INDEX idx_tokens_project_id ON tokens (project_id);
CREATE INDEX idx_tokens_expires_at ON tokens (expires_at);
CREATE INDEX idx_tokens_is_active ON tokens (is_active);

CREATE TABLE audit_events (
  id             TEXT PRIMARY KEY,
  timestamp      DATETIME NOT NULL,
  action         TEXT NOT NULL,
  actor          TEXT NOT NULL,
  project_id     TEXT,
  request_id     TEXT,
  correlation_id TEXT,
  client_ip      TEXT,
  method         TEXT,
  path           TEXT,
  user_agent     TEXT,
  outcome        TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied', 'error')),
  reason         TEXT,
  token_id       TEXT,
  metadata       TEXT
);
CREATE INDEX idx_audit_timestamp ON audit_events (timestamp);
CREATE INDEX idx_audit_action ON audit_events (action);
CREATE INDEX idx_audit_project_id ON audit_events (project_id);
CREATE INDEX idx_audit_client_ip ON audit_events (client_ip);
CREATE INDEX idx_audit_request_id ON audit_events (request_id);
CREATE INDEX idx_audit_outcome ON audit_events (outcome);
CREATE INDEX idx_audit_ip_action ON audit_events (client_ip, action);
