-- gpt-user schema, version 4: the email change (SPEC §2.3).

-- One row per email-change flow. The codes and their attempt counters are not here: they live in
-- the ephemeral store (Redis or the table below), named by id and code_ref.
CREATE TABLE IF NOT EXISTS email_changes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL CONSTRAINT email_changes_state_check
        CHECK (state IN ('confirm_current', 'enter_new', 'confirm_new', 'done', 'dead')),
    new_email TEXT,
    code_ref TEXT NOT NULL,
    sends BIGINT NOT NULL,
    last_send_at BIGINT NOT NULL,
    window_ends_at BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS email_changes_user ON email_changes (user_id);

-- The ephemeral store when no Redis is configured (and on Spin): short-lived values with their
-- expiry, which every read checks; housekeeping deletes expired rows.
CREATE TABLE IF NOT EXISTS ephemeral (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
