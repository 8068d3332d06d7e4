-- Reverts 0002_usage: drops exactly what it added (the usage history and the new columns with their values).
DROP TABLE IF EXISTS usage_daily;

ALTER TABLE projects DROP COLUMN IF EXISTS rate_limit_rpm;

ALTER TABLE tokens DROP COLUMN IF EXISTS rate_limit_rpm;

ALTER TABLE tokens DROP COLUMN IF EXISTS max_tokens;

ALTER TABLE tokens DROP COLUMN IF EXISTS completion_tokens;

ALTER TABLE tokens DROP COLUMN IF EXISTS prompt_tokens;
