//! The failover network: several servers (members) that replicate the ledger with Raft
//! ([openraft](https://docs.rs/openraft)), so that licensing goes on while a majority of them
//! runs.
//!
//! The ledger's events are the replicated log: the coordinator (the Raft leader) decides, and a
//! batch of events becomes one Raft entry ([`types::Proposal`]), acknowledged once a majority of
//! the members has it durable. The state machine is the member's own ledger: applying an entry
//! appends its events to the member's `ledger` table, numbered and hash-linked there, in the same
//! transaction as the applied log id, so every member holds the same chain. Each member keeps its
//! own SQLite store: the Raft log, vote and snapshot in `raft_*` tables beside the ledger
//! ([`log_store`], [`state_machine`]).
//!
//! The coordinator's events reach the members in batches, one Raft entry per round trip
//! ([`proposer`]: group commit across the network). Members call each other's Raft over HTTP
//! ([`calls`]), every call and answer signed with the member's server key and checked against
//! the keys pinned for the network ([`envelope`]); the endpoints are the `peers` room's. Who the
//! members are, and each one's id (derived from its key), is the network's [`config`].
//!
//! Built so far: the replicated storage (checked against openraft's own storage suite), the
//! signed calls, the proposer, and the members' list. The engine deciding through the proposer, forming a network,
//! the quorum refusal and the clients' failover come next.

#![allow(
    clippy::result_large_err,
    reason = "openraft's storage traits return its StorageError"
)]

pub mod calls;
pub mod config;
pub mod envelope;
pub mod log_store;
pub mod proposer;
pub mod state_machine;
pub mod types;

#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
