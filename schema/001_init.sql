-- gpt-user schema, version 1. Portable: runs unchanged on SQLite (host and Spin) and PostgreSQL.
-- Times are BIGINT milliseconds since the Unix epoch; flags are BIGINT 0/1 (no BOOLEAN on SQLite).
-- Statements are separated by ";" at the end of a line; runners split on that.
-- Edited in place before the first release (status CHECK, outbox lease_id, the pending index):
-- a database made by an earlier build of this file must be recreated.

CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    pin TEXT NOT NULL,
    passphrase_hash TEXT NOT NULL,
    locale TEXT NOT NULL,
    -- A value the code does not know cannot be stored, so it is never read back as something else.
    status TEXT NOT NULL CONSTRAINT users_status_check CHECK (status IN ('pending', 'active', 'blocked')),
    email_verified BIGINT NOT NULL DEFAULT 0,
    consent_at BIGINT NOT NULL,
    policy_version TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_pin_key UNIQUE (pin)
);

-- Housekeeping deletes pending accounts by their last sign-up attempt (updated_at).
CREATE INDEX IF NOT EXISTS users_status_updated ON users (status, updated_at);

-- One-time secrets (tokens, codes): only the SHA-256 is stored.
CREATE TABLE IF NOT EXISTS secrets (
    hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS secrets_user ON secrets (user_id, purpose);

-- Durable outbox: written in the same transaction as the change it belongs to, delivered later.
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    queued_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    -- Random id of the claim that holds the row: only that dispatcher may renew or mark it.
    lease_id TEXT,
    sent_at BIGINT,
    last_error TEXT
);

CREATE INDEX IF NOT EXISTS outbox_due ON outbox (sent_at, next_attempt_at);

CREATE INDEX IF NOT EXISTS outbox_recipient ON outbox (recipient, kind, queued_at);
