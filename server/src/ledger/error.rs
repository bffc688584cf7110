//! What can go wrong with the ledger: a write that failed, or an entry that does not check out.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LedgerError {
    #[error("the ledger could not be written; the server stopped taking changes: {0}")]
    WriteFailed(String),
    /// A member of a failover network could not have the change committed by a majority.
    #[error("{0}")]
    NoQuorum(String),
    #[error("ledger entry {seq} is not valid: {why}")]
    Broken { seq: u64, why: String },
}
