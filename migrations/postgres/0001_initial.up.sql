-- Initial schema (SPEC 4.1), PostgreSQL dialect. Same tables and columns as migrations/sqlite/0001_initial.
-- Timestamps are TIMESTAMPTZ (the driver binds them as UTC text and runs every session with TimeZone UTC),
-- booleans BOOLEAN, counters BIGINT, audit metadata JSONB. schema_migrations is created by the driver itself.
CREATE TABLE projects (
  id             TEXT        NOT NULL PRIMARY KEY,
  name           TEXT        NOT NULL UNIQUE,
  api_key        TEXT        NOT NULL,
  is_active      BOOLEAN     NOT NULL DEFAULT TRUE,
  deactivated_at TIMESTAMPTZ,
  created_at     TIMESTAMPTZ NOT NULL,
  updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE tokens (
  id              TEXT        NOT NULL PRIMARY KEY,
  token_hash      TEXT        NOT NULL UNIQUE,
  token_hint      TEXT        NOT NULL,
  project_id      TEXT        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  expires_at      TIMESTAMPTZ,
  is_active       BOOLEAN     NOT NULL DEFAULT TRUE,
  deactivated_at  TIMESTAMPTZ,
  request_count   BIGINT      NOT NULL DEFAULT 0,
  max_requests    BIGINT,
  created_at      TIMESTAMPTZ NOT NULL,
  last_used_at    TIMESTAMPTZ,
  cache_hit_count BIGINT      NOT NULL DEFAULT 0
);

CREATE INDEX idx_tokens_project_id ON tokens (project_id);

CREATE INDEX idx_tokens_expires_at ON tokens (expires_at);

-- project_id and token_id are deliberately not foreign keys: an audit event outlives what it describes and
-- may name an id that never existed (a denied request for an unknown project).
CREATE TABLE audit_events (
  id             TEXT        NOT NULL PRIMARY KEY,
  "timestamp"    TIMESTAMPTZ NOT NULL,
  action         TEXT        NOT NULL,
  actor          TEXT        NOT NULL,
  project_id     TEXT,
  request_id     TEXT,
  correlation_id TEXT,
  client_ip      TEXT,
  method         TEXT,
  path           TEXT,
  user_agent     TEXT,
  outcome        TEXT        NOT NULL CHECK (outcome IN ('success', 'failure', 'denied', 'error')),
  reason         TEXT,
  token_id       TEXT,
  metadata       JSONB
);

-- (timestamp, id) rather than timestamp alone: a backward scan of it also serves the newest-first order
-- (timestamp DESC, id DESC) of the audit list without a sort.
CREATE INDEX idx_audit_events_timestamp ON audit_events ("timestamp", id);

CREATE INDEX idx_audit_events_action ON audit_events (action);

CREATE INDEX idx_audit_events_project_id ON audit_events (project_id);

CREATE INDEX idx_audit_events_request_id ON audit_events (request_id);

CREATE INDEX idx_audit_events_outcome ON audit_events (outcome);
