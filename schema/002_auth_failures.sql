-- gpt-user schema, version 2: Auth_Check's count of consecutive failed checks per PIN (SPEC §2.4).
-- Keyed by PIN, not by account: unknown PINs are counted too, so throttling tells nothing.

CREATE TABLE IF NOT EXISTS auth_failures (
    pin TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    -- 1 once the owner of a locked PIN was emailed (once per lock).
    lock_notified BIGINT NOT NULL DEFAULT 0
);
