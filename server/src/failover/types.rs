//! The types the Raft log carries: a member, a proposal (a batch of ledger events) and what
//! applying one answers.

use std::{fmt, io::Cursor};

use openraft::StorageError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ledger::Event;

/// A member of the network: where the others reach it, and who it is. Part of the replicated
/// membership, so every member knows every other's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its license port, `HOST:PORT`.
    pub addr: String,
    /// Its server key's public half (base64): what its calls are checked against.
    #[serde(default)]
    pub key: String,
    /// Its server id, bound to its machine.
    #[serde(default)]
    pub server_id: String,
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

/// Who proposed an entry: a member, in one of its engine's epochs as coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub member: NodeId,
    pub epoch: u64,
}

/// The events of one Raft entry: what the coordinator decided while the previous entry was
/// being replicated (group commit across the network).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    #[serde(default)]
    pub origin: Option<Origin>,
    /// The ledger entry the events were decided on top of: applied only if the ledger still ends
    /// there, so a decision made on a state that has moved on (an old coordinator's, a batch in
    /// flight while its coordinator changed) is refused alike on every member, never applied on
    /// top of another coordinator's. `None`: appended wherever the ledger ends.
    #[serde(default)]
    pub after: Option<u64>,
    pub events: Vec<Proposed>,
}

/// What applying an entry did: the ledger sequence numbers its events got, or that it was
/// refused (its `after` no longer the ledger's end).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub seqs: Vec<u64>,
    #[serde(default)]
    pub refused: bool,
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
