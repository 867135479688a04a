-- gpt-user schema, version 3: why the operator blocked an account (`gpt-user users block --reason`).
-- NULL unless blocked with a reason; `users unblock` clears it. Not idempotent (no portable
-- `ADD COLUMN IF NOT EXISTS`): runners apply it once, recorded in schema_migrations.

ALTER TABLE users ADD COLUMN blocked_reason TEXT;
