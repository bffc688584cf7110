-- The ledger: every change to sessions, grants and credits, in order. Append-only. Each row's
-- hash covers the previous row's hash and this row's content, so editing or deleting any row
-- breaks the chain from there on (see server/src/ledger.rs).
CREATE TABLE ledger (
    seq       INTEGER PRIMARY KEY,
    at        TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
) STRICT;
