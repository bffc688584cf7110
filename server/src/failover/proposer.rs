//! Group commit across the network: the coordinator's events go to the members in batches.
//!
//! As the single server's ledger writer commits everything that queued up during the previous
//! commit in one transaction, the [`Proposer`] sends everything that queued up during the
//! previous replication as one Raft entry ([`Proposal`]). A batch is acknowledged once a majority
//! of the members holds it durable and the coordinator applied it, and every event then learns its
//! ledger sequence number. One batch is in flight at a time; under load, one round trip to the
//! members serves hundreds of events.
//!
//! On a member that is not (or no longer) the coordinator, every event is refused with the
//! coordinator it knows of, and nothing is acknowledged that a majority does not hold.

use openraft::error::{ClientWriteError, RaftError};
use thiserror::Error;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::types::{NodeId, Proposal, Proposed, TypeConfig};
use crate::ledger::{Event, writer::next_batch};

/// Most events in one Raft entry; more wait for the next.
const MAX_EVENTS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProposeError {
    #[error("this member is not the coordinator (the coordinator is {})", .0.map_or_else(|| "not known".to_owned(), |id| format!("member {id}")))]
    NotCoordinator(Option<NodeId>),
    #[error("the network did not commit the change: {0}")]
    Failed(String),
}

#[derive(Debug)]
struct Waiting {
    proposed: Proposed,
    done: oneshot::Sender<Result<u64, ProposeError>>,
}

/// Hands events to the coordinator's batching task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Proposer {
    queue: mpsc::UnboundedSender<Waiting>,
}

/// Resolves when a proposed event is held by a majority and applied.
#[derive(Debug)]
pub struct Replicated(oneshot::Receiver<Result<u64, ProposeError>>);

impl Replicated {
    /// Waits for the event's ledger sequence number.
    pub async fn durable(self) -> Result<u64, ProposeError> {
        self.0
            .await
            .unwrap_or_else(|_| Err(ProposeError::Failed("the proposer stopped".to_owned())))
    }
}

impl Proposer {
    /// Starts the batching task on `raft`; it stops with `shutdown`, after proposing what was
    /// queued.
    pub fn spawn(
        raft: openraft::Raft<TypeConfig>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        (Self { queue }, tokio::spawn(run(raft, receiver, shutdown)))
    }

    /// Queues `event`, decided at `at`.
    pub fn propose(&self, at: OffsetDateTime, event: Event) -> Replicated {
        let (done, receiver) = oneshot::channel();
        if let Err(mpsc::error::SendError(waiting)) = self.queue.send(Waiting {
            proposed: Proposed { at, event },
            done,
        }) {
            let _ = waiting
                .done
                .send(Err(ProposeError::Failed("the proposer stopped".to_owned())));
        }
        Replicated(receiver)
    }
}

fn refusal(e: &RaftError<NodeId, ClientWriteError<NodeId, super::types::Member>>) -> ProposeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            ProposeError::NotCoordinator(forward.leader_id)
        }
        other => ProposeError::Failed(other.to_string()),
    }
}

async fn run(
    raft: openraft::Raft<TypeConfig>,
    mut receiver: mpsc::UnboundedReceiver<Waiting>,
    shutdown: CancellationToken,
) {
    while let Some(batch) = next_batch(&mut receiver, MAX_EVENTS, &shutdown).await {
        let (events, senders): (Vec<Proposed>, Vec<_>) =
            batch.into_iter().map(|w| (w.proposed, w.done)).unzip();
        match raft.client_write(Proposal { events }).await {
            Ok(written) => {
                let mut seqs = written.data.seqs.into_iter();
                for done in senders {
                    let _ = done.send(seqs.next().ok_or_else(|| {
                        ProposeError::Failed("the entry applied fewer events".to_owned())
                    }));
                }
            }
            Err(e) => {
                let refused = refusal(&e);
                for done in senders {
                    let _ = done.send(Err(refused.clone()));
                }
            }
        }
    }
}
