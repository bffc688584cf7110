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
//! ([`proposer`]: group commit across the network; the engine's writer queue drains into it).
//! Every member's engine applies what the log commits ([`replica`], linked into the
//! [`state_machine`]), and [`leadership`] moves it between deciding and following as Raft's
//! view of the coordinator changes. Members call each other over HTTP on their license ports
//! ([`calls`]), every call and answer authenticated with a key the two members derive from their
//! server keys, pinned for the network ([`envelope`]); the endpoints are the `peers` room's. Besides Raft,
//! members say hello to each other for the status page ([`roster`]) and pass heartbeats and their
//! outbox on to the coordinator ([`relay`]). Who the members are, each one's id (derived from its
//! key) and the network's id (from their server ids) is the network's [`config`]; [`network`]
//! starts a member.

#![allow(
    clippy::result_large_err,
    reason = "openraft's storage traits return its StorageError"
)]

pub mod calls;
pub mod config;
pub mod envelope;
pub mod leadership;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod proposer;
pub mod relay;
pub mod replica;
pub mod roster;
pub mod state_machine;
pub mod types;

#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
