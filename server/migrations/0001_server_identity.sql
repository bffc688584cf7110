-- Who this server is. One row, written at first start and never changed: licenses are bound to
-- server_id, so changing it would orphan every installed license.
CREATE TABLE server_identity (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    server_id TEXT    NOT NULL,
    created   TEXT    NOT NULL
) STRICT;
