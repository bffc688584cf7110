-- Archived ledger history: entries older than the retention window (--ledger-archive-after) move
-- out of the `ledger` table into immutable, gzip-compressed segment files in the data directory
-- (ledger-archive/). One row per segment, written before its entries leave the table: the
-- entries it holds, the hashes that link it into the chain (the `prev_hash` of its first entry,
-- the `hash` of its last), the file and its SHA-256. See server/src/ledger/archive.rs.
CREATE TABLE ledger_segments (
    first_seq       INTEGER PRIMARY KEY,
    last_seq        INTEGER NOT NULL,
    first_prev_hash TEXT    NOT NULL,
    last_hash       TEXT    NOT NULL,
    file            TEXT    NOT NULL,
    sha256          TEXT    NOT NULL,
    archived_at     TEXT    NOT NULL
) STRICT;
