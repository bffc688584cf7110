-- Administrators of the realm `local`: argon2id password hashes (PHC strings), never passwords.
CREATE TABLE admin_users (
    principal     TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    -- NULL: the permissions hold for every scope (`server.*`).
    scope         TEXT,
    created       TEXT NOT NULL
) STRICT;

-- Logged-in session tokens, by the SHA-256 of the token: a copy of the store does not let anyone
-- log in.
CREATE TABLE admin_tokens (
    token_hash TEXT PRIMARY KEY,
    principal  TEXT NOT NULL,
    realm      TEXT NOT NULL,
    created    TEXT NOT NULL,
    last_used  TEXT NOT NULL
) STRICT;

-- Licensed users: (realm, principal) pairs that authenticated, counted against max_users.
CREATE TABLE licensed_users (
    realm       TEXT NOT NULL,
    principal   TEXT NOT NULL,
    last_access TEXT NOT NULL,
    PRIMARY KEY (realm, principal)
) STRICT;
