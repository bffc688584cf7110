-- The ledger folded into totals for the usage screen (server/src/usage): hourly per cartridge,
-- daily per cartridge and host and per cartridge and user, refusals hourly per reason. Rebuildable from the ledger:
-- `usage_cursor` names the last entry folded in, and every change to these tables commits with
-- it. A pool, host, realm or principal that is absent is stored as ''.

-- The last ledger entry folded in (one row, id 1).
CREATE TABLE usage_cursor (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL,
    at   INTEGER NOT NULL  -- that entry's time, Unix seconds
) STRICT;

-- Per cartridge and hour (Unix seconds of the hour's start): grants, licence-seconds held by
-- licenses released since, the most licenses held at once, credits debited, refusals.
CREATE TABLE usage_hours (
    pool          TEXT    NOT NULL,
    product_id    INTEGER NOT NULL,
    major_version INTEGER NOT NULL,
    hour          INTEGER NOT NULL,
    grants        INTEGER NOT NULL,
    held_seconds  INTEGER NOT NULL,
    peak          INTEGER NOT NULL,
    credits       INTEGER NOT NULL,
    PRIMARY KEY (hour, pool, product_id, major_version)
) STRICT, WITHOUT ROWID;

-- Per cartridge, host and day (Unix seconds of the UTC day's start); and per cartridge, user and
-- day. Two tables, not one per (host, user): a year of a farm's every host-user pair is millions
-- of rows, too many to total while someone waits.
CREATE TABLE usage_host_days (
    day           INTEGER NOT NULL,
    pool          TEXT    NOT NULL,
    product_id    INTEGER NOT NULL,
    major_version INTEGER NOT NULL,
    host          TEXT    NOT NULL,
    grants        INTEGER NOT NULL,
    held_seconds  INTEGER NOT NULL,
    credits       INTEGER NOT NULL,
    PRIMARY KEY (day, pool, product_id, major_version, host)
) STRICT, WITHOUT ROWID;

CREATE TABLE usage_user_days (
    day           INTEGER NOT NULL,
    pool          TEXT    NOT NULL,
    product_id    INTEGER NOT NULL,
    major_version INTEGER NOT NULL,
    realm         TEXT    NOT NULL,
    principal     TEXT    NOT NULL,
    grants        INTEGER NOT NULL,
    held_seconds  INTEGER NOT NULL,
    credits       INTEGER NOT NULL,
    PRIMARY KEY (day, pool, product_id, major_version, realm, principal)
) STRICT, WITHOUT ROWID;

-- Refusals per hour, pool, cartridge (-1 for a session refused before it asked for one) and
-- reason ('' when the entry predates reasons).
CREATE TABLE usage_refusals (
    hour          INTEGER NOT NULL,
    pool          TEXT    NOT NULL,
    product_id    INTEGER NOT NULL,
    major_version INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    refusals      INTEGER NOT NULL,
    PRIMARY KEY (hour, pool, product_id, major_version, reason)
) STRICT, WITHOUT ROWID;

-- The sessions open as of the cursor, with who they run for: a grant is counted for its host
-- and user.
CREATE TABLE usage_sessions (
    session_id INTEGER PRIMARY KEY,
    host       TEXT NOT NULL,
    realm      TEXT NOT NULL,
    principal  TEXT NOT NULL
) STRICT;

-- The licenses held as of the cursor: their time is counted when they are released.
CREATE TABLE usage_held (
    license_id    INTEGER PRIMARY KEY,
    pool          TEXT    NOT NULL,
    product_id    INTEGER NOT NULL,
    major_version INTEGER NOT NULL,
    host          TEXT    NOT NULL,
    realm         TEXT    NOT NULL,
    principal     TEXT    NOT NULL,
    since         INTEGER NOT NULL  -- Unix seconds
) STRICT;
