//! What the failover tests share: proposals to write, and the chain a member's store holds.

use std::time::Duration;

use models::SessionStatus;
use time::OffsetDateTime;

use super::types::{Proposal, Proposed, TypeConfig};
use crate::{ledger::Event, store::Store};

pub type Raft = openraft::Raft<TypeConfig>;

/// A proposal of `n` sessions finished, numbered from `first`.
pub fn sessions(first: u64, n: u64) -> Proposal {
    Proposal {
        origin: None,
        after: None,
        events: (first..first + n)
            .map(|session_id| Proposed {
                at: OffsetDateTime::now_utc(),
                event: Event::SessionClosed {
                    session_id,
                    status: SessionStatus::Finished,
                    released: Vec::new(),
                    by: None,
                },
            })
            .collect(),
    }
}

/// Writes `proposals` through `leader`, then waits (up to 10 s) until each of `rafts` applied
/// all of them.
pub async fn replicate<'a>(
    leader: &Raft,
    rafts: impl IntoIterator<Item = &'a Raft>,
    proposals: impl IntoIterator<Item = Proposal>,
) {
    for proposal in proposals {
        let n = proposal.events.len();
        let written = leader.client_write(proposal).await.unwrap();
        assert_eq!(written.data.seqs.len(), n);
    }
    let index = leader.metrics().borrow().last_applied.map(|id| id.index);
    for raft in rafts {
        raft.wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(index, "replicated")
            .await
            .unwrap();
    }
}

/// (seq, hash) of every ledger row of `store`.
pub async fn chain(store: &Store) -> Vec<(u64, String)> {
    store
        .ledger_rows(0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.hash))
        .collect()
}
