-- gpt-user schema, version 6: SignUp_Init's cap on new pending accounts per hour counts the pending
-- users created in the last hour on every sign-up (SPEC §2.1; issue 19 item 4).

CREATE INDEX IF NOT EXISTS users_status_created ON users (status, created_at);
