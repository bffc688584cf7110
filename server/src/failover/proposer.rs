//! Group commit across the network: the coordinator's ledger writer.
//!
//! On a member, the engine's [`Writer`](crate::ledger::Writer) queue is drained by this task
//! instead of the local group-commit writer. As that one commits everything that queued up during
//! the previous commit in one transaction, this one sends everything that queued up during the
//! previous replication as one Raft entry ([`Proposal`]). A batch is acknowledged once a majority
//! of the members holds it durable and the coordinator applied it, and every event then learns its
//! ledger sequence number. One batch is in flight at a time; under load, one round trip to the
//! members serves hundreds of events.
//!
//! Each proposal names the ledger entry its events were decided on top of (the last one this
//! writer committed), and carries the engine's epoch, so the coordinator knows its own entries
//! when they come back applied. A proposal that is not committed in time, or is refused (the
//! ledger moved on: another coordinator's entries came first), or that this member may no longer
//! make, leaves the engine's memory ahead of what was committed: the writer refuses changes at
//! once, and the leadership watch rebuilds the engine ([`super::leadership`]).

use std::{sync::Arc, time::Duration};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::types::{Member, NodeId, Origin, Proposal, Proposed, TypeConfig};
use crate::ledger::{LedgerError, Queue, Refusal};

/// Most events in one Raft entry; more wait for the next.
const MAX_EVENTS: usize = 4096;

/// How long a proposal may take to be committed before the requests waiting for it are told
/// the network did not confirm it (it may still be committed: their retries are idempotent).
pub const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// Why the coordinator's proposal did not go through, in public words.
fn refusal(e: &RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> String {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            match forward.leader_id {
                Some(leader) => format!(
                    "this member is no longer the coordinator (member {leader} is); ask again"
                ),
                None => "this member is no longer the coordinator; ask again".to_owned(),
            }
        }
        other => format!("the failover network did not commit the change: {other}"),
    }
}

/// Drains `queue` into `raft` as member `me` until `shutdown` (after proposing what was queued).
/// `trouble` is told whenever the engine's memory ran ahead of what was committed.
pub async fn run(
    raft: openraft::Raft<TypeConfig>,
    mut queue: Queue,
    me: NodeId,
    trouble: Arc<Notify>,
    shutdown: CancellationToken,
) {
    while let Some(mut batch) = queue.next(MAX_EVENTS, &shutdown).await {
        if batch.events.is_empty() {
            batch.finish(Ok(Vec::new()));
            continue;
        }
        let count = batch.events.len();
        let proposal = Proposal {
            origin: Some(Origin {
                member: me,
                epoch: batch.generation(),
            }),
            after: Some(queue.committed()),
            events: std::mem::take(&mut batch.events)
                .into_iter()
                .map(|(at, event)| Proposed { at, event })
                .collect(),
        };
        let failure = match tokio::time::timeout(COMMIT_WAIT, raft.client_write(proposal)).await {
            Ok(Ok(written)) if !written.data.refused && written.data.seqs.len() == count => {
                batch.finish(Ok(written.data.seqs));
                continue;
            }
            Ok(Ok(_)) => "the coordinator's state had moved on; ask again".to_owned(),
            Ok(Err(e)) => refusal(&e),
            Err(_) => format!(
                "the failover network did not confirm the change within {} s (fewer than a \
                 majority of the members answer); ask again",
                COMMIT_WAIT.as_secs()
            ),
        };
        tracing::warn!(reason = %failure, events = count, "a proposal was not committed");
        queue.refuse_until_rebuilt(Refusal::NoQuorum(failure.clone()));
        trouble.notify_one();
        batch.finish(Err(LedgerError::NoQuorum(failure)));
    }
}
