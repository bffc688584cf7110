//! Anchoring the ledger at the vendor: the server tells its vendor where its ledger stands, so
//! that a rewritten history shows even to someone who holds the server's key.
//!
//! The signed head in the data directory (`ledger::head`) catches a ledger that was cut short or
//! rewritten by someone without the server's key. Root on the customer's machine has the key,
//! and can sign a new head after rewriting. So the server also sends its head, with a summary of
//! its usage, to the vendor service (`--vendor-url`): at start, then every
//! `--ledger-report-every` (a day by default), before an online activation, and inside every
//! offline activation request. The vendor keeps the heads and checks that each new one extends
//! the last (`vendor::heads`).
//!
//! To prove that it extends, a report carries the hashes the ledger holds now at the entries it
//! reported before ([`reported`] keeps their numbers in the data directory); an online report
//! that lacks the entry the vendor kept last is asked for it and sent again ([`reporter`]).
//! [`summary`] builds what a report says, from the engine's counters as of a durable entry.

pub mod reported;
pub mod reporter;
pub mod summary;

pub use self::{reporter::run, summary::summary};
