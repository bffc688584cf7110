//! The license engine: sessions, grants, waiting requests, heartbeats, and the statistics the
//! status page shows.
//!
//! **State is a fold of the ledger.** Everything here changes only through `State::apply` of a
//! ledger event ([`state`]). A live request decides under the engine's lock, applies the event in
//! memory and queues it to the ledger writer under the same lock, so the ledger's order is the
//! order of the decisions; then, outside the lock, it waits until the event is durable before
//! answering. At start, replaying the ledger through the same `apply` rebuilds exactly this state
//! ([`machine`]).
//!
//! # Layout
//!
//! - [`config`]: timeouts, limits and the clock;
//! - [`state`]: the state and its fold, the only place it changes;
//! - [`machine`]: the [`Engine`]: the state under its lock, the writer, the inventory;
//!   [`snapshot`]: the state as of a ledger entry, stored so a start replays only what came after
//!   it; [`snapshots`]: taking them while serving, and signing the ledger's head; [`audit`]:
//!   verifying in the background the entries before the snapshot a start loaded;
//!   [`recovery`]: taking changes again after the ledger writer failed, without a restart;
//! - [`sessions`]: opening, heartbeats, closing, and dropping silent sessions; [`secrets`]: the
//!   token that every call on a session must carry;
//! - [`grants`]: license requests, the waiting queue, releases; [`search`]: which cartridge answers;
//! - [`views`]: statistics and sessions as the status page shows them, paged by [`browse`], and
//!   the sampled [`history`]; [`usage`]: the counters as of a durable entry, for the vendor;
//!   [`gauges`]: sessions, waiters and the snapshot's lag, counted for the metrics;
//! - [`error`]: why a request was refused, in the domain's words (HTTP maps them elsewhere).
//!
//! The model-based test, which checks every answer against a reference model and the replay
//! against the live state, is in `tests.rs`.

pub mod audit;
pub mod browse;
pub mod config;
pub mod error;
pub mod gauges;
pub mod grants;
pub mod history;
pub mod machine;
pub mod recovery;
pub mod replica;
pub mod search;
pub mod secrets;
pub mod sessions;
pub mod snapshot;
pub mod snapshots;
pub mod state;
pub mod usage;
pub mod views;

#[cfg(test)]
mod tests;

pub use self::{
    config::{Clock, EngineConfig, SnapshotPolicy},
    error::EngineError,
    machine::Engine,
    recovery::Unavailable,
    sessions::check_user,
    snapshots::HeadSigner,
    state::Role,
};
