-- Every license the ledger saw installed, folded from its license_installed and license_removed
-- entries with the usage totals (server/src/usage): what the Licenses screen lists as removed or
-- replaced, and who installed each. Rebuildable from the ledger like the totals.
CREATE TABLE usage_licenses (
    sha256        TEXT    PRIMARY KEY,  -- the file's content hash: one row per issue
    license_key   TEXT    NOT NULL,
    serial_number INTEGER NOT NULL,
    installed     INTEGER NOT NULL,     -- Unix seconds
    installed_by  TEXT    NOT NULL,     -- '' when the entry did not say
    removed       INTEGER,              -- NULL while installed
    removed_by    TEXT,
    replaced_by   TEXT,                 -- the newer issue's sha256, when one replaced it
    file          TEXT                  -- the license file, when the entry carried it
) STRICT;
CREATE INDEX usage_licenses_installed ON usage_licenses (installed);

-- Fold the ledger again from its start, so that the licenses installed before this table
-- existed are in it (the totals are rebuilt on the way).
DELETE FROM usage_cursor;
DELETE FROM usage_hours;
DELETE FROM usage_host_days;
DELETE FROM usage_user_days;
DELETE FROM usage_refusals;
DELETE FROM usage_sessions;
DELETE FROM usage_held;
