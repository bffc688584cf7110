-- The members of the failover networks licenses were activated for: a member reports its own
-- ledger's head with its own key, which the vendor knows from the network's activation request.
CREATE TABLE network_members (
    network_id TEXT NOT NULL,
    server_id  TEXT NOT NULL,
    public_key TEXT NOT NULL,
    PRIMARY KEY (network_id, server_id)
) STRICT;
CREATE INDEX network_members_by_server ON network_members (server_id);
