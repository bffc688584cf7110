//! Usage history: the ledger folded into hourly totals per cartridge and daily totals per
//! cartridge, host and user, so that "who used what last month", "how often were we out of
//! seats" and "when do the credits run out" are answered from a few thousand rows instead of a
//! year of ledger entries.
//!
//! - [`fold`]: the fold itself, a pure function of the entries;
//! - [`index`]: [`Usage`], which reads the entries after its cursor (archived segments
//!   included), folds them and writes the totals with the new cursor, in a task of its own that
//!   follows the engine's changes and before each report;
//! - [`report`]: a report over a range, from the totals plus the licenses held now;
//! - [`licenses`]: every license issue installed, and when it was removed or replaced;
//! - [`recent`]: the last day by the hour, for the status page's charts.
//!
//! The totals are derived data: they are written without waiting for the disk (a crash loses
//! the last few, and the cursor with them, so they are folded again), and deleting the tables
//! rebuilds them from the ledger.

pub mod fold;
pub mod index;
pub mod licenses;
pub mod recent;
pub mod report;

pub use self::{
    index::Usage,
    report::{Installed, Range},
};
