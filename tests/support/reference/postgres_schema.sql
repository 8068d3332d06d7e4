-- The PostgreSQL schema of the Go llm-proxy (sofatutor/llm-proxy) after its goose migrations 00001-00006
-- (internal/database/migrations/sql/postgres/), written out as the state they leave, with goose's own version
-- table. Used by tests/integration/migrate_import_reference_test.cpp to build a reference database.
CREATE TABLE goose_db_version (
  id         SERIAL PRIMARY KEY,
  version_id BIGINT NOT NULL,
  is_applied BOOLEAN NOT NULL,
  tstamp     TIMESTAMP DEFAULT now()
);
INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, TRUE), (1, TRUE), (2, TRUE), (3, TRUE), (4, TRUE),
  (5, TRUE), (6, TRUE);

-- 00001, with 00002 (deactivated_at) and 00005 (openai_api_key renamed api_key)
CREATE TABLE projects (
  id             TEXT PRIMARY KEY,
  name           TEXT NOT NULL UNIQUE,
  api_key        TEXT NOT NULL,
  is_active      BOOLEAN NOT NULL DEFAULT TRUE,
  created_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  deactivated_at TIMESTAMP
);
CREATE INDEX idx_projects_name ON projects (name);

-- 00001, with 00002 (deactivated_at), 00003 (cache_hit_count) and 00004 (UUID id as primary key, token unique)
CREATE TABLE tokens (
  token           TEXT NOT NULL,
  project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  expires_at      TIMESTAMP,
  is_active       BOOLEAN NOT NULL DEFAULT TRUE,
  request_count   INTEGER NOT NULL DEFAULT 0,
  max_requests    INTEGER,
  created_at      TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_used_at    TIMESTAMP,
  deactivated_at  TIMESTAMP,
  cache_hit_count INTEGER NOT NULL DEFAULT 0,
  id              UUID NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
  CONSTRAINT tokens_token_unique UNIQUE (token)
);
CREATE INDEX idx_tokens_project_id ON tokens (project_id);
CREATE INDEX idx_tokens_expires_at ON tokens (expires_at);
CREATE INDEX idx_tokens_is_active ON tokens (is_active);
CREATE INDEX idx_tokens_token ON tokens (token);

-- 00001, with 00006 (outcome also denied, error)
CREATE TABLE audit_events (
  id             TEXT PRIMARY KEY,
  timestamp      TIMESTAMP NOT NULL,
  action         TEXT NOT NULL,
  actor          TEXT NOT NULL,
  project_id     TEXT,
  request_id     TEXT,
  correlation_id TEXT,
  client_ip      TEXT,
  method         TEXT,
  path           TEXT,
  user_agent     TEXT,
  outcome        TEXT NOT NULL,
  reason         TEXT,
  token_id       TEXT,
  metadata       TEXT,
  CONSTRAINT audit_events_outcome_check CHECK (outcome IN ('success', 'failure', 'denied', 'error'))
);
CREATE INDEX idx_audit_timestamp ON audit_events (timestamp);
CREATE INDEX idx_audit_action ON audit_events (action);
CREATE INDEX idx_audit_project_id ON audit_events (project_id);
CREATE INDEX idx_audit_client_ip ON audit_events (client_ip);
CREATE INDEX idx_audit_request_id ON audit_events (request_id);
CREATE INDEX idx_audit_outcome ON audit_events (outcome);
CREATE INDEX idx_audit_ip_action ON audit_events (client_ip, action);
