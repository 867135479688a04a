-- gpt-user schema, version 8: OAuth 2.1 sign-in from a chat (SPEC §2.5, issue 20).

-- The clients that may ask a person for a grant: registered by themselves (RFC 7591), made by the
-- operator (with a secret, stored as SHA-256 only), or read from a client ID metadata document.
CREATE TABLE IF NOT EXISTS oauth_clients (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CONSTRAINT oauth_clients_kind_check CHECK (kind IN ('registered', 'operator', 'metadata')),
    name TEXT NOT NULL,
    -- A JSON array of the exact redirect URIs.
    redirect_uris TEXT NOT NULL,
    secret_hash TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);

CREATE INDEX IF NOT EXISTS oauth_clients_created ON oauth_clients (kind, created_at);

-- One grant per authorization a person gave: the family of its code and every token issued from it.
CREATE TABLE IF NOT EXISTS oauth_grants (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS oauth_grants_user ON oauth_grants (user_id);

-- Codes, access and refresh tokens: only their SHA-256. A spent code or refresh token is kept until
-- it expires, so that its second use is recognised (and revokes its grant).
CREATE TABLE IF NOT EXISTS oauth_tokens (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL CONSTRAINT oauth_tokens_kind_check CHECK (kind IN ('code', 'access', 'refresh')),
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at BIGINT,
    redirect_uri TEXT,
    code_challenge TEXT
);

CREATE INDEX IF NOT EXISTS oauth_tokens_grant ON oauth_tokens (grant_id);
CREATE INDEX IF NOT EXISTS oauth_tokens_expires ON oauth_tokens (expires_at);
