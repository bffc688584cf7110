//! The ledger: an append-only, hash-chained record of every change to sessions, grants and
//! credits, and of license installs and pool assignments.
//!
//! **It is the source of truth for the license protocol.** The in-memory state that answers
//! requests (`engine::Engine`) is a fold of the ledger's events: at start the server loads the
//! newest snapshot of that fold (`engine::snapshot`) and verifies and replays the entries after
//! it, and every live change is applied in memory and appended here in the same order, under the
//! same lock. So whatever a client was told can be rebuilt after a
//! crash, and what is in memory is never anything the ledger could not reproduce.
//!
//! **Durable before acknowledged**, group-committed ([`writer`]), and **tamper evident**: each
//! row is linked to the one before by a hash ([`chain`]).
//!
//! # Layout
//!
//! - [`event`]: the events, and the row each is stored as;
//! - [`chain`]: the hash that links a row to the one before (no I/O);
//! - [`writer`]: the group-commit writer task and the [`Commit`] a request waits on;
//! - [`verify`]: reading the ledger back, checking every link and hash, in order, from genesis
//!   or from the entry a snapshot covers;
//! - [`head`]: the server's signature on the entry the ledger has reached, which finds a ledger
//!   cut short or rewritten;
//! - [`archive`]: old entries moved out of the table into compressed [`segment`] files, which
//!   the reading goes through first;
//! - [`export`]: the ledger as CSV rows, for billing and audits.

pub mod archive;
pub mod chain;
pub mod error;
pub mod event;
pub mod export;
pub mod head;
pub mod segment;
pub mod verify;
pub mod writer;

pub use self::{
    error::LedgerError,
    event::{Event, ReleasedLicense},
    verify::{Entry, Walk, verify, verify_from},
    writer::{Batch, Commit, Queue, Refusal, Writer},
};
