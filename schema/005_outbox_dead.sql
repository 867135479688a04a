-- gpt-user schema, version 5: dead mail (issue 19). A message the relay refused for good (a 5xx
-- reply) or not delivered within a day of being queued is never tried again: `dead_at` is set, its
-- subject and bodies (which hold live links and codes) are wiped, and `last_error` keeps the reason.
-- Housekeeping deletes dead rows after 7 days, as it does delivered ones.

ALTER TABLE outbox ADD COLUMN dead_at BIGINT;

-- What a deliverer claims: live (neither sent nor dead) messages by their next attempt, due soonest
-- first. Partial, so neither delivered nor dead rows are ever scanned by a claim.
CREATE INDEX IF NOT EXISTS outbox_live_next ON outbox (next_attempt_at) WHERE sent_at IS NULL AND dead_at IS NULL;
