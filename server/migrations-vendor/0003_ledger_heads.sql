-- The ledger heads license servers reported (ledger reports, activation requests): each server's
-- newest head, the key it signs with, and the first finding against its history, which stays
-- until the vendor looks into it.
CREATE TABLE ledger_servers (
    server_id     TEXT PRIMARY KEY,
    public_key    TEXT NOT NULL,
    first_seen    TEXT NOT NULL,
    last_seq      INTEGER NOT NULL,
    last_hash     TEXT NOT NULL,
    last_received TEXT NOT NULL,
    last_verdict  TEXT NOT NULL,
    -- JSON: the usage the newest head reported.
    last_usage    TEXT NOT NULL,
    finding       TEXT,
    finding_at    TEXT
) STRICT;

-- Every head recorded, newest 1000 per server.
CREATE TABLE ledger_heads (
    id        INTEGER PRIMARY KEY,
    server_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    received  TEXT NOT NULL,
    via       TEXT NOT NULL,
    verdict   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    usage     TEXT NOT NULL
) STRICT;
CREATE INDEX ledger_heads_by_server ON ledger_heads (server_id, id);
