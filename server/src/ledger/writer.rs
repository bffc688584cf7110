//! The group-commit writer: **durable before acknowledged**, without one fsync per request.
//!
//! A change is acknowledged only once its row is committed (SQLite WAL, `synchronous = FULL`).
//! One writer task takes everything that queued up while the previous commit was in flight and
//! commits it in one statement, then tells every waiting request at once. Under load, one fsync
//! serves hundreds of requests.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{error::LedgerError, event::Event};
use crate::store::{LedgerAppender, NewLedgerRow, Store, StoreError};

/// Most rows in one group commit; more wait for the next.
const MAX_BATCH: usize = 4096;

/// Rows between two checkpoints of the WAL (taken on the side, see `Store::ledger_appender`).
/// About a megabyte of WAL at typical row sizes.
const CHECKPOINT_EVERY: usize = 4000;

struct Pending {
    /// `None`: a barrier, acknowledged once everything queued before it is durable.
    row: Option<NewLedgerRow>,
    done: oneshot::Sender<Result<u64, LedgerError>>,
}

/// Hands events to the group-commit writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Pending>,
    failed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("row", &self.row).finish()
    }
}

/// Resolves when an appended event is durable.
#[derive(Debug)]
pub struct Commit(oneshot::Receiver<Result<u64, LedgerError>>);

impl Commit {
    /// Waits until the event is committed; its sequence number (0 for a barrier).
    pub async fn durable(self) -> Result<u64, LedgerError> {
        self.0.await.unwrap_or_else(|_| {
            Err(LedgerError::WriteFailed(
                "the ledger writer stopped".to_owned(),
            ))
        })
    }
}

impl Writer {
    /// Starts the writer task. It stops when `shutdown` is cancelled, after committing what was
    /// queued.
    pub fn spawn(store: Store, shutdown: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let failed = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run_writer(store, receiver, failed.clone(), shutdown));
        (Self { queue, failed }, task)
    }

    /// Queues `event`; call this under the same lock that applied it in memory, so the ledger's
    /// order is the order of the decisions.
    pub fn append(&self, at: OffsetDateTime, event: &Event) -> Commit {
        self.send(Some(event.row(at)))
    }

    /// A commit that resolves once everything appended before it is durable.
    pub fn barrier(&self) -> Commit {
        self.send(None)
    }

    /// Whether a write failed: from then on nothing is acknowledged, since memory may hold what
    /// the disk does not.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn send(&self, row: Option<NewLedgerRow>) -> Commit {
        let (done, receiver) = oneshot::channel();
        if self.has_failed() {
            let _ = done.send(Err(LedgerError::WriteFailed(
                "an earlier write failed".to_owned(),
            )));
        } else if let Err(mpsc::error::SendError(pending)) = self.queue.send(Pending { row, done })
        {
            let _ = pending.done.send(Err(LedgerError::WriteFailed(
                "the ledger writer stopped".to_owned(),
            )));
        }
        Commit(receiver)
    }
}

async fn run_writer(
    store: Store,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
    failed: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut appender = None;
    let mut since_checkpoint = 0;
    let mut checkpointing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let first = tokio::select! {
            biased;
            pending = receiver.recv() => pending,
            () = shutdown.cancelled() => {
                // Commit what is queued, then stop taking more.
                receiver.close();
                receiver.recv().await
            }
        };
        let Some(first) = first else {
            if let Some(checkpoint) = checkpointing {
                let _ = checkpoint.await;
            }
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let rows: Vec<NewLedgerRow> = batch.iter().filter_map(|p| p.row.clone()).collect();
        let started = std::time::Instant::now();
        let result = if rows.is_empty() || failed.load(Ordering::SeqCst) {
            if failed.load(Ordering::SeqCst) {
                Err(LedgerError::WriteFailed(
                    "an earlier write failed".to_owned(),
                ))
            } else {
                Ok(Vec::new())
            }
        } else {
            append(&store, &mut appender, &rows)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot write the ledger; refusing all changes from now on");
                    failed.store(true, Ordering::SeqCst);
                    LedgerError::WriteFailed(e.to_string())
                })
        };
        tracing::trace!(
            rows = rows.len(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "ledger batch committed"
        );
        since_checkpoint += rows.len();
        if since_checkpoint >= CHECKPOINT_EVERY
            && checkpointing.as_ref().is_none_or(|c| c.is_finished())
        {
            since_checkpoint = 0;
            let store = store.clone();
            checkpointing = Some(tokio::spawn(async move {
                if let Err(e) = store.checkpoint().await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; will try again");
                }
            }));
        }
        let mut seqs = result.as_ref().map(|s| s.iter()).ok();
        for pending in batch {
            let answer = match (&result, &mut seqs) {
                (Ok(_), Some(seqs)) => Ok(if pending.row.is_some() {
                    seqs.next().copied().unwrap_or(0)
                } else {
                    0
                }),
                (Err(e), _) => Err(e.clone()),
                (Ok(_), None) => Ok(0),
            };
            let _ = pending.done.send(answer);
        }
    }
}

/// Appends with the writer's own connection, opened on first use and reopened after an error.
async fn append(
    store: &Store,
    appender: &mut Option<LedgerAppender>,
    rows: &[NewLedgerRow],
) -> Result<Vec<u64>, StoreError> {
    let mut current = match appender.take() {
        Some(current) => current,
        None => store.ledger_appender().await?,
    };
    let seqs = current.append(rows).await?;
    *appender = Some(current);
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::verify;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        (dir, store)
    }

    fn refused(session_id: u64) -> Event {
        Event::sample(session_id)
    }

    #[tokio::test]
    async fn concurrent_appends_are_group_committed_in_order_and_the_chain_verifies() {
        let (_dir, store) = store().await;
        let shutdown = CancellationToken::new();
        let (writer, task) = Writer::spawn(store.clone(), shutdown.clone());
        let commits: Vec<_> = (1..=500)
            .map(|i| writer.append(OffsetDateTime::now_utc(), &refused(i)))
            .collect();
        let mut seqs = Vec::new();
        for commit in commits {
            seqs.push(commit.durable().await.unwrap());
        }
        assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
        writer.barrier().durable().await.unwrap();
        // Another process appends to the same chain.
        store
            .append_ledger(&[refused(501).row(OffsetDateTime::now_utc())])
            .await
            .unwrap();
        assert_eq!(
            writer
                .append(OffsetDateTime::now_utc(), &refused(502))
                .durable()
                .await,
            Ok(502)
        );

        let mut sessions = Vec::new();
        let summary = verify(&store, |entry| {
            if let Event::LicenseRefused { session_id, .. } = entry.event {
                sessions.push(session_id);
            }
        })
        .await
        .unwrap();
        assert_eq!(summary.entries, 502);
        assert_eq!(sessions, (1..=502).collect::<Vec<_>>());
        shutdown.cancel();
        task.await.unwrap();
    }
}
