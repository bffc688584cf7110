-- One row, rewritten by the server to find out whether the store takes writes again after the
-- ledger writer failed (disk full, I/O error); see engine::recovery.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
