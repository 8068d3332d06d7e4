-- LLM token usage, budgets and rate limits (SPEC 14), SQLite dialect.
-- New token columns: the LLM tokens used so far (added by the batched usage flush like request_count), an optional
-- budget of LLM tokens (max_tokens, NULL = unlimited) and an optional requests-per-minute limit (NULL = none).
ALTER TABLE tokens ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;

ALTER TABLE tokens ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0;

ALTER TABLE tokens ADD COLUMN max_tokens INTEGER;

ALTER TABLE tokens ADD COLUMN rate_limit_rpm INTEGER;

ALTER TABLE projects ADD COLUMN rate_limit_rpm INTEGER;

-- Usage per UTC calendar day, project, token and model, upserted in batches. `day` is `YYYY-MM-DD` text (the
-- CHECK keeps it so, which keeps text order equal to date order); `model` is '' when unknown, never NULL, so it
-- can be part of the key. No foreign keys, like audit_events: usage history outlives the tokens it describes.
CREATE TABLE usage_daily (
  day               TEXT    NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
  project_id        TEXT    NOT NULL,
  token_id          TEXT    NOT NULL,
  model             TEXT    NOT NULL,
  requests          INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
  prompt_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
  completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
  cache_hits        INTEGER NOT NULL DEFAULT 0 CHECK (cache_hits >= 0),
  PRIMARY KEY (day, project_id, token_id, model)
) STRICT;

-- The usage series of one project or one token over a range of days (the primary key serves "all projects").
CREATE INDEX idx_usage_daily_project_day ON usage_daily (project_id, day);

CREATE INDEX idx_usage_daily_token_day ON usage_daily (token_id, day);
