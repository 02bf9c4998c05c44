-- Access tokens (RFC 6750 Bearer). A token is "<selector>.<verifier>": the selector finds the row,
-- and only a SHA-256 of the verifier is kept, so a copy of this table lets nobody in.
-- Loaded once into a template; every test gets a fresh copy.
CREATE TABLE access_tokens (
    selector      text        PRIMARY KEY,   -- the token's first half: an index key, not a secret
    verifier_hash bytea       NOT NULL,      -- sha256(verifier as ASCII): 32 bytes, never the verifier
    subject       text        NOT NULL,      -- who the token speaks for
    scope         text        NOT NULL,      -- space-separated scope tokens (RFC 6749 §3.3)
    issued_at     timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,      -- the token is dead from this instant on
    revoked_at    timestamptz                -- NULL while the token has not been revoked
);

-- "Revoke everything of this user" (password change, logout everywhere) scans by subject.
CREATE INDEX access_tokens_subject ON access_tokens (subject);
