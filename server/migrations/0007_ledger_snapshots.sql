-- Snapshots of the engine's state, so a start (or a recovery) replays only the ledger entries
-- after the newest one instead of the whole history; see server/src/engine/snapshot.rs.
-- `seq` and `hash` name the last ledger entry a snapshot covers: it is used only while the ledger
-- still holds that entry with that hash. `head` is the server's signature of that entry (the
-- signed head, also kept in the file ledger-head.json), so a ledger cut short or rewritten
-- before it is refused.
CREATE TABLE ledger_snapshots (
    seq         INTEGER PRIMARY KEY,
    hash        TEXT    NOT NULL,
    taken_at    TEXT    NOT NULL,
    format      INTEGER NOT NULL,
    body        BLOB    NOT NULL,
    body_sha256 TEXT    NOT NULL,
    head        TEXT    NOT NULL
) STRICT;
