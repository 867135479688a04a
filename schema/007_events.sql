-- gpt-user schema, version 7: the audit trail (issue 22). One row per account event, appended in the
-- transaction of the change it records and never changed; housekeeping deletes rows past the
-- retention. No address is stored: `email_hash` is 'sha256:' and the hex SHA-256 of the account's
-- trimmed, lower-cased address at the time, and there is no foreign key to `users`: a deleted
-- account keeps its trail.

CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    -- One more than the largest so far: the events of one transaction keep their order (ties
    -- between concurrent transactions are harmless: they order by time first).
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    email_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL CONSTRAINT events_actor_check CHECK (actor IN ('chat', 'browser', 'operator', 'system')),
    client TEXT,
    request_id TEXT,
    detail TEXT
);

CREATE INDEX IF NOT EXISTS events_user_at ON events (user_id, at);
CREATE INDEX IF NOT EXISTS events_email_at ON events (email_hash, at);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_seq ON events (seq);
