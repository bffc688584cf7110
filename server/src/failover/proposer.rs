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

use std::{collections::VecDeque, sync::Arc, time::Duration};

use openraft::{error::ClientWriteError, raft::ClientWriteResponse};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::types::{Member, NodeId, Origin, Proposal, Proposed, TypeConfig};
use crate::ledger::{Batch, LedgerError, Queue, Refusal};

/// Most events in one Raft entry; more wait for the next.
const MAX_EVENTS: usize = 4096;

/// Entries proposed and not yet committed at once. One: openraft writes each entry to the
/// coordinator's log on its own (a sync each) before sending it, so what queues up meanwhile is
/// better off as one larger entry (measured: 2,168 cycles/s at 64 clients with one in flight,
/// 929 with 16; 2 or 3 were no better than 1).
const IN_FLIGHT: usize = 1;

/// How long a proposal may take to be committed before the requests waiting for it are told
/// the network did not confirm it (it may still be committed: their retries are idempotent).
pub const COMMIT_WAIT: Duration = Duration::from_secs(5);

type Written = Result<ClientWriteResponse<TypeConfig>, ClientWriteError<NodeId, Member>>;

/// A proposal on its way: its batch, its events' count, and the answer to come.
struct Flight {
    batch: Batch,
    count: usize,
    answer: oneshot::Receiver<Written>,
    /// When its requests are told the network did not confirm it.
    deadline: tokio::time::Instant,
}

/// Why the coordinator's proposal did not go through, in public words.
fn refusal(e: &ClientWriteError<NodeId, Member>) -> String {
    match e {
        ClientWriteError::ForwardToLeader(forward) => match forward.leader_id {
            Some(leader) => {
                format!("this member is no longer the coordinator (member {leader} is); ask again")
            }
            None => "this member is no longer the coordinator; ask again".to_owned(),
        },
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
    let mut flying: VecDeque<Flight> = VecDeque::new();
    // The ledger entry the next proposal follows, while proposals of this generation fly.
    let mut follows: Option<(u64, u64)> = None;
    let mut drained = false;
    while !(drained && flying.is_empty()) {
        let deadline = flying.front().map(|f| f.deadline);
        let room = flying.len() < IN_FLIGHT;
        tokio::select! {
            biased;
            answer = async {
                match flying.front_mut() {
                    Some(flight) => (&mut flight.answer).await,
                    None => std::future::pending().await,
                }
            }, if deadline.is_some() => {
                let Some(flight) = flying.pop_front() else { continue };
                let failure = match answer {
                    Ok(Ok(written)) if !written.data.refused && written.data.seqs.len() == flight.count => {
                        flight.batch.finish(Ok(written.data.seqs));
                        continue;
                    }
                    Ok(Ok(_)) => "the coordinator's state had moved on; ask again".to_owned(),
                    Ok(Err(e)) => refusal(&e),
                    Err(_) => "this member's part of the failover network stopped".to_owned(),
                };
                follows = None;
                fail(&queue, &trouble, flight.batch, failure);
            }
            batch = queue.next(MAX_EVENTS, &shutdown), if !drained && room => {
                let Some(mut batch) = batch else {
                    drained = true;
                    continue;
                };
                if batch.events.is_empty() {
                    batch.finish(Ok(Vec::new()));
                    continue;
                }
                let generation = batch.generation();
                let after = match follows {
                    Some((g, after)) if g == generation => after,
                    _ => queue.committed(),
                };
                let count = batch.events.len();
                let proposal = Proposal {
                    origin: Some(Origin { member: me, epoch: generation }),
                    after: Some(after),
                    events: std::mem::take(&mut batch.events)
                        .into_iter()
                        .map(|(at, event)| Proposed { at, event })
                        .collect(),
                };
                // Appended to the log in the order proposed: each follows the one before.
                match raft.client_write_ff(proposal).await {
                    Ok(answer) => {
                        follows = Some((generation, after + count as u64));
                        let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
                        flying.push_back(Flight { batch, count, answer, deadline });
                    }
                    Err(e) => {
                        follows = None;
                        fail(&queue, &trouble, batch, format!("the failover network did not take the change: {e}"));
                    }
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                // The oldest proposal took too long: its requests are told so; it may still be
                // committed (then it comes back as another coordinator's would, and rebuilds).
                let Some(flight) = flying.pop_front() else { continue };
                follows = None;
                fail(&queue, &trouble, flight.batch, format!(
                    "the failover network did not confirm the change within {} s (fewer than a \
                     majority of the members answer); ask again",
                    COMMIT_WAIT.as_secs()
                ));
            }
        }
    }
}

/// Refuses changes until the engine rebuilt, tells the watch, and answers `batch` with `why`.
fn fail(queue: &Queue, trouble: &Notify, batch: Batch, why: String) {
    tracing::warn!(reason = %why, "a proposal was not committed");
    queue.refuse_until_rebuilt(Refusal::NoQuorum(why.clone()));
    trouble.notify_one();
    batch.finish(Err(LedgerError::NoQuorum(why)));
}
