//! The types the Raft log carries: a member, a proposal (a batch of ledger events) and what
//! applying one answers.

use std::{fmt, io::Cursor};

use openraft::StorageError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ledger::Event;

/// A member of the network, as the others reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its license port, `HOST:PORT`.
    pub addr: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

/// One ledger event as the coordinator decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposed {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub event: Event,
}

/// The events of one Raft entry: what the coordinator decided while the previous entry was
/// being replicated (group commit across the network).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub events: Vec<Proposed>,
}

/// What applying an entry did: the ledger sequence numbers its events got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub seqs: Vec<u64>,
}

openraft::declare_raft_types!(
    /// The failover network's Raft types.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Error = StorageError<NodeId>;

/// A failed read of the store, as openraft takes it.
pub fn read_error(e: &(impl std::error::Error + 'static)) -> Error {
    openraft::StorageIOError::read(e).into()
}

/// A failed write of the store, as openraft takes it.
pub fn write_error(e: &(impl std::error::Error + 'static)) -> Error {
    openraft::StorageIOError::write(e).into()
}
