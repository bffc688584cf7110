-- The vendor licensing service's own store (not a license server's).

-- Logged-in accounts, by the SHA-256 of the token.
CREATE TABLE vendor_tokens (
    token_hash TEXT PRIMARY KEY,
    principal  TEXT NOT NULL,
    created    TEXT NOT NULL,
    last_used  TEXT NOT NULL
) STRICT;

-- Which license key is activated on which server, and the file that was issued: activating the
-- same key for the same server again returns this very file.
CREATE TABLE activations (
    license_key  TEXT NOT NULL,
    server_id    TEXT NOT NULL,
    license_file TEXT NOT NULL,
    activated    TEXT NOT NULL,
    PRIMARY KEY (license_key, server_id)
) STRICT;
