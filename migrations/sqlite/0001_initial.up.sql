-- Initial schema (SPEC 4.1), SQLite dialect.
-- Timestamps are TEXT in the fixed-width UTC form YYYY-MM-DDTHH:MM:SS.ffffffZ written by the application, so
-- they sort and compare correctly as text. Booleans are INTEGER 0/1. STRICT makes SQLite reject a value of the
-- wrong type instead of silently storing it, which catches binding mistakes early.
CREATE TABLE projects (
  id             TEXT    NOT NULL PRIMARY KEY,
  name           TEXT    NOT NULL UNIQUE,
  api_key        TEXT    NOT NULL,
  is_active      INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  deactivated_at TEXT,
  created_at     TEXT    NOT NULL,
  updated_at     TEXT    NOT NULL
) STRICT;

CREATE TABLE tokens (
  id              TEXT    NOT NULL PRIMARY KEY,
  token_hash      TEXT    NOT NULL UNIQUE,
  token_hint      TEXT    NOT NULL,
  project_id      TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  expires_at      TEXT,
  is_active       INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  deactivated_at  TEXT,
  request_count   INTEGER NOT NULL DEFAULT 0,
  max_requests    INTEGER,
  created_at      TEXT    NOT NULL,
  last_used_at    TEXT,
  cache_hit_count INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX idx_tokens_project_id ON tokens (project_id);

CREATE INDEX idx_tokens_expires_at ON tokens (expires_at);

-- project_id and token_id are deliberately not foreign keys: an audit event outlives what it describes and
-- may name an id that never existed (a denied request for an unknown project).
CREATE TABLE audit_events (
  id             TEXT NOT NULL PRIMARY KEY,
  timestamp      TEXT NOT NULL,
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
) STRICT;

-- (timestamp, id) rather than timestamp alone: it also serves the newest-first order (timestamp DESC, id DESC)
-- of the audit list without a sort.
CREATE INDEX idx_audit_events_timestamp ON audit_events (timestamp, id);

CREATE INDEX idx_audit_events_action ON audit_events (action);

CREATE INDEX idx_audit_events_project_id ON audit_events (project_id);

CREATE INDEX idx_audit_events_request_id ON audit_events (request_id);

CREATE INDEX idx_audit_events_outcome ON audit_events (outcome);
