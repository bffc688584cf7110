-- The machine this data directory belongs to (a fingerprint, see licensing::host), and, once it
-- was found on another machine, the id it had there and when it moved. NULL host: a data
-- directory from before host binding; the first start of this version binds it.
ALTER TABLE server_identity ADD COLUMN host TEXT;
ALTER TABLE server_identity ADD COLUMN previous_server_id TEXT;
ALTER TABLE server_identity ADD COLUMN moved_at TEXT;
