-- When each license file was installed: the active license is the one installed last. The file in
-- DATA_DIR/licenses is the license itself; this row only remembers the order. sha256 tells
-- whether the row still describes the file that is there.
CREATE TABLE license_installs (
    license_key TEXT    PRIMARY KEY,
    sha256      TEXT    NOT NULL,
    installed   TEXT    NOT NULL,
    -- Strictly increasing, so two installs within one clock tick still have an order.
    seq         INTEGER NOT NULL UNIQUE
) STRICT;

-- Which pool a cartridge (a license's serial number) belongs to. No row = the default pool.
CREATE TABLE cartridge_pools (
    serial_number INTEGER PRIMARY KEY,
    pool          TEXT    NOT NULL CHECK (pool <> ''),
    assigned      TEXT    NOT NULL
) STRICT;
