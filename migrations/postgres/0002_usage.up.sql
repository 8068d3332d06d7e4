-- LLM token usage, budgets and rate limits (SPEC 14), PostgreSQL dialect. Same tables and columns as
-- migrations/sqlite/0002_usage.
-- New token columns: the LLM tokens used so far (added by the batched usage flush like request_count), an optional
-- budget of LLM tokens (max_tokens, NULL = unlimited) and an optional requests-per-minute limit (NULL = none).
-- ADD COLUMN with a constant default rewrites no rows (PostgreSQL 11+).
ALTER TABLE tokens ADD COLUMN prompt_tokens BIGINT NOT NULL DEFAULT 0;

ALTER TABLE tokens ADD COLUMN completion_tokens BIGINT NOT NULL DEFAULT 0;

ALTER TABLE tokens ADD COLUMN max_tokens BIGINT;

ALTER TABLE tokens ADD COLUMN rate_limit_rpm BIGINT;

ALTER TABLE projects ADD COLUMN rate_limit_rpm BIGINT;

-- Usage per UTC calendar day, project, token and model, upserted in batches. `model` is '' when unknown, never
-- NULL, so it can be part of the key. No foreign keys, like audit_events: usage history outlives the tokens it
-- describes.
CREATE TABLE usage_daily (
  day               DATE   NOT NULL,
  project_id        TEXT   NOT NULL,
  token_id          TEXT   NOT NULL,
  model             TEXT   NOT NULL,
  requests          BIGINT NOT NULL DEFAULT 0 CHECK (requests >= 0),
  prompt_tokens     BIGINT NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
  completion_tokens BIGINT NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
  cache_hits        BIGINT NOT NULL DEFAULT 0 CHECK (cache_hits >= 0),
  PRIMARY KEY (day, project_id, token_id, model)
);

-- The usage series of one project or one token over a range of days (the primary key serves "all projects").
CREATE INDEX idx_usage_daily_project_day ON usage_daily (project_id, day);

CREATE INDEX idx_usage_daily_token_day ON usage_daily (token_id, day);
