//! The store: every byte of state the server keeps in a database goes through this room, and no
//! SQL is written anywhere else. That keeps the door open for another backend (a failover
//! network's members each keep their own): a second implementation of these few functions, not a
//! hunt through the handlers.
//!
//! Today it is an embedded SQLite database in the data directory, in WAL mode (readers never wait
//! for the writer) with `synchronous = FULL`: a commit is on disk before it returns, because a
//! license grant or a credit debit that was acknowledged must survive a power cut. Migrations are
//! compiled into the binary and applied at start.
//!
//! One module per group of tables: [`identity`] (who this server is), [`licenses`] (install
//! order, pools), [`admins`] (administrators, their tokens), [`licensed_users`], [`ledger`] (the
//! append-only ledger table), [`snapshots`] (the engine's state as of a ledger entry), [`segments`] (which entries were archived where), [`raft`] (a failover network member's Raft log), [`usage`] (the ledger folded into totals for the usage screen, written by `usage_write`) with [`license_history`] (every license installed and removed), and [`vendor`] (the vendor service's own database) with [`vendor_heads`] (the ledger heads servers reported to it). The store knows
//! what it stores, not what it means: ids, hashes and events are the rooms above's; a change that
//! must be in the ledger comes with its ledger row, written in the same transaction.

pub mod admins;
pub mod database;
pub mod identity;
pub mod ledger;
pub mod license_history;
pub mod licensed_users;
pub mod licenses;
pub mod raft;
pub mod segments;
pub mod snapshots;
pub mod usage;
mod usage_write;
pub mod vendor;
pub mod vendor_heads;

pub use self::{
    admins::{AdminUserRow, TokenRow},
    database::{Store, StoreError, Sync},
    identity::IdentityRow,
    ledger::{Chain, Checkpoint, LedgerAppender, LedgerRow, NewLedgerRow, RowTuple},
    licensed_users::{Admission, LicensedUserRow},
    licenses::Install,
    segments::SegmentRow,
    snapshots::{SnapshotMeta, SnapshotRow},
    vendor::{Activation, VendorStore},
    vendor_heads::{HeadDecision, HeadOutcome, KeyCheck, KnownHead, LedgerServerRow, NewHead},
};
