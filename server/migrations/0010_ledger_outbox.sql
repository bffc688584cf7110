-- A failover network member's ledger entries that wait to go through the network's replicated
-- log: what a change to another table (an administrator, a license install, a pool) records on a
-- member, whose own ledger only the replicated log appends to. Taken out in order, by id, once
-- the coordinator has them durable.
CREATE TABLE ledger_outbox (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    at   TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
