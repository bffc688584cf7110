-- A failover network member's Raft log and state (see the failover room). Values are the Raft
-- room's JSON; the store keeps them as text.

-- The log: one entry per index, as JSON.
CREATE TABLE raft_log (
    log_index INTEGER PRIMARY KEY,
    entry     TEXT NOT NULL
) STRICT;

-- Named values: the vote, the committed and the last purged log id, the last applied log id and
-- membership of the state machine.
CREATE TABLE raft_state (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- The state machine's current snapshot, to send to a member that is too far behind.
CREATE TABLE raft_snapshot (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    meta TEXT NOT NULL,
    data BLOB NOT NULL
) STRICT;
