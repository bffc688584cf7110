//! The group-commit writer: **durable before acknowledged**, without one fsync per request.
//!
//! A change is acknowledged only once its row is committed (SQLite WAL, `synchronous = FULL`).
//! One writer task takes everything that queued up while the previous commit was in flight and
//! commits it in one statement, then tells every waiting request at once. Under load, one fsync
//! serves hundreds of requests.
//!
//! **After a failed write, nothing is acknowledged** until the engine has rebuilt its state from
//! what is on disk and called [`Writer::resume`] with a reopened store (`engine::recovery`): the
//! failed batch and everything queued behind it were applied in memory but never written, and the
//! connection that failed is closed rather than trusted again (as PostgreSQL does not trust the
//! page cache after a failed fsync).

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use parking_lot::Mutex;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::{error::LedgerError, event::Event};
use crate::store::{Checkpoint, LedgerAppender, NewLedgerRow, Store, StoreError};

/// Most rows in one group commit; more wait for the next.
const MAX_BATCH: usize = 4096;

/// Rows between two checkpoints of the WAL (taken on the side, see `Store::ledger_appender`).
/// About a megabyte of WAL at typical row sizes.
const CHECKPOINT_EVERY: usize = 4000;

/// A WAL larger than this gets a truncating checkpoint instead of a passive one. Under a load
/// that never pauses, a passive checkpoint copies most of the WAL but never all of it, so SQLite
/// never starts the WAL over, and it grows without bound (269 MB after 10 s at full speed).
const WAL_TRUNCATE_AT: u64 = 16 * 1024 * 1024;

struct Pending {
    /// `None`: a barrier, acknowledged once everything queued before it is durable.
    row: Option<NewLedgerRow>,
    done: oneshot::Sender<Result<u64, LedgerError>>,
}

/// Hands events to the group-commit writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Pending>,
    health: Arc<Health>,
}

/// Whether the writer takes changes, shared by its handles and its task.
#[derive(Debug)]
struct Health {
    /// Read by every change before it is made; mirrors `failure`.
    failed: AtomicBool,
    /// Why writes fail (`None` while they succeed), watched by the recovery.
    failure: watch::Sender<Option<String>>,
    /// The store the task writes to; replaced by [`Writer::resume`].
    store: Mutex<Store>,
    /// The sequence number of the last row the task committed (0 if none yet).
    committed: AtomicU64,
}

impl Health {
    fn fail(&self, reason: String) {
        self.failed.store(true, Ordering::SeqCst);
        self.failure.send_replace(Some(reason));
    }

    fn store(&self) -> Store {
        self.store.lock().clone()
    }
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
    /// Waits until the event is committed; its sequence number. For a barrier, the sequence
    /// number of the last row this writer committed before it (0 if none yet): what a snapshot
    /// of the state as of the barrier covers.
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
        let health = Arc::new(Health {
            failed: AtomicBool::new(false),
            failure: watch::Sender::new(None),
            store: Mutex::new(store),
            committed: AtomicU64::new(0),
        });
        let task = tokio::spawn(run_writer(receiver, health.clone(), shutdown));
        (Self { queue, health }, task)
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
        self.health.failed.load(Ordering::SeqCst)
    }

    /// Why changes cannot be recorded, while they cannot, in words fit for anyone to read.
    pub fn failure(&self) -> Option<String> {
        self.health.failure.borrow().clone()
    }

    /// Resolves once a write has failed (at once if one has and [`Writer::resume`] has not been
    /// called since).
    pub async fn failed(&self) {
        let mut failure = self.health.failure.subscribe();
        // The sender lives as long as `self`, so this cannot end with an error.
        let _ = failure.wait_for(Option::is_some).await;
    }

    /// The sequence number of the last row committed (0 if none yet since the server started).
    pub fn committed(&self) -> u64 {
        self.health.committed.load(Ordering::SeqCst)
    }

    /// The store being written to (after a recovery, the reopened one).
    pub fn store(&self) -> Store {
        self.health.store()
    }

    /// Records why the last attempt to recover failed, in public words, for the readiness check.
    pub fn still_failing(&self, reason: String) {
        self.health.fail(reason);
    }

    /// Takes changes again, written to `store`. Only for the engine, once its state is what the
    /// ledger on disk says, and under its lock, so no change is decided on the state before.
    pub fn resume(&self, store: Store) {
        *self.health.store.lock() = store;
        self.health.failure.send_replace(None);
        self.health.failed.store(false, Ordering::SeqCst);
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

/// Waits for the next item, then takes whatever else queued meanwhile, up to `max`: one group
/// commit's worth. Once `shutdown` is cancelled the queue takes nothing more, and what it held
/// still comes out; `None` when it is closed and empty.
pub async fn next_batch<T>(
    receiver: &mut mpsc::UnboundedReceiver<T>,
    max: usize,
    shutdown: &CancellationToken,
) -> Option<Vec<T>> {
    let first = tokio::select! {
        biased;
        item = receiver.recv() => item,
        () = shutdown.cancelled() => {
            receiver.close();
            receiver.recv().await
        }
    };
    let mut batch = vec![first?];
    while batch.len() < max {
        match receiver.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn run_writer(
    mut receiver: mpsc::UnboundedReceiver<Pending>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let mut appender = None;
    // The sequence number of the last row this task committed: what a barrier answers.
    let mut last_seq = 0;
    let mut since_checkpoint = 0;
    let mut checkpointing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let Some(batch) = next_batch(&mut receiver, MAX_BATCH, &shutdown).await else {
            if let Some(checkpoint) = checkpointing {
                let _ = checkpoint.await;
            }
            return;
        };
        let rows: Vec<NewLedgerRow> = batch.iter().filter_map(|p| p.row.clone()).collect();
        let started = std::time::Instant::now();
        let failed = health.failed.load(Ordering::SeqCst);
        let result = if failed {
            Err(LedgerError::WriteFailed(
                "an earlier write failed".to_owned(),
            ))
        } else if rows.is_empty() {
            Ok(Vec::new())
        } else {
            append(&health, &mut appender, &rows).await.map_err(|e| {
                tracing::error!(
                    error = %e,
                    "cannot write the ledger; refusing all changes until writes succeed again"
                );
                health.fail(e.public_reason());
                LedgerError::WriteFailed(e.to_string())
            })
        };
        tracing::trace!(
            rows = rows.len(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "ledger batch committed"
        );
        since_checkpoint += rows.len();
        let idle = checkpointing.as_ref().is_none_or(|c| c.is_finished());
        // The WAL's size is one `stat` per batch: a run of small commits (few clients, each
        // commit a few pages) grows it faster per row than big batches do.
        let oversized = idle && !rows.is_empty() && health.store().wal_bytes() > WAL_TRUNCATE_AT;
        if oversized || (since_checkpoint >= CHECKPOINT_EVERY && idle) {
            since_checkpoint = 0;
            let store = health.store();
            let mode = if oversized {
                Checkpoint::Truncate
            } else {
                Checkpoint::Passive
            };
            checkpointing = Some(tokio::spawn(async move {
                if let Err(e) = store.checkpoint(mode).await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; will try again");
                }
            }));
        }
        let mut seqs = result.as_ref().map(|s| s.iter()).ok();
        for pending in batch {
            let answer = match (&result, &mut seqs) {
                (Ok(_), Some(seqs)) if pending.row.is_some() => {
                    let seq = seqs.next().copied().unwrap_or(0);
                    last_seq = last_seq.max(seq);
                    Ok(seq)
                }
                (Ok(_), _) => Ok(last_seq),
                (Err(e), _) => Err(e.clone()),
            };
            let _ = pending.done.send(answer);
        }
        health.committed.store(last_seq, Ordering::SeqCst);
    }
}

/// Appends with the writer's own connection, opened on first use and after an error (the one
/// that failed is discarded).
async fn append(
    health: &Health,
    appender: &mut Option<LedgerAppender>,
    rows: &[NewLedgerRow],
) -> Result<Vec<u64>, StoreError> {
    let mut current = match appender.take() {
        Some(current) => current,
        None => health.store().ledger_appender().await?,
    };
    match current.append(rows).await {
        Ok(seqs) => {
            *appender = Some(current);
            Ok(seqs)
        }
        Err(e) => {
            current.discard().await;
            Err(e)
        }
    }
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
        // A barrier names the last entry committed before it: what a snapshot taken with it
        // covers.
        assert_eq!(writer.barrier().durable().await, Ok(500));
        assert_eq!(writer.committed(), 500);
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
