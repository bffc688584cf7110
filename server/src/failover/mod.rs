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
//! This is the first part of the network: the replicated storage, checked against openraft's
//! own storage test suite. The members' RPCs, the coordinator's engine and the clients' failover
//! come next.

#![allow(
    clippy::result_large_err,
    reason = "openraft's storage traits return its StorageError"
)]

pub mod calls;
pub mod envelope;
pub mod log_store;
pub mod state_machine;
pub mod types;

#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
