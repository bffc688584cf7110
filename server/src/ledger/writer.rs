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
use crate::{
    store::{Checkpoint, LedgerAppender, NewLedgerRow, Store, StoreError},
    sys::prometheus::{COUNTS, Histogram, SECONDS},
};

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
    event: Option<(OffsetDateTime, Event)>,
    /// The writer's generation when it was queued (see [`Writer::new_generation`]).
    generation: u64,
    done: oneshot::Sender<Result<u64, LedgerError>>,
}

/// Why the writer takes no changes right now, in words fit for anyone to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A write failed; the server recovers by itself ([`Writer::resume`]).
    Failed(String),
    /// This member of a failover network may not decide now: it is not the coordinator, or the
    /// coordinator has lost its majority.
    NoQuorum(String),
    /// This member of a failover network follows a coordinator, which decides: its requests go
    /// there.
    Following(String),
}

impl Refusal {
    pub fn reason(&self) -> &str {
        match self {
            Self::Failed(reason) | Self::NoQuorum(reason) | Self::Following(reason) => reason,
        }
    }
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
    /// Why changes are refused (`None` while they are taken), watched by the recovery.
    failure: watch::Sender<Option<Refusal>>,
    /// The store the task writes to; replaced by [`Writer::resume`].
    store: Mutex<Store>,
    /// The sequence number of the last row committed (0 if none yet).
    committed: AtomicU64,
    /// Events queued in an earlier generation are refused, never committed.
    generation: AtomicU64,
    /// Memory holds decisions that were not committed: nothing is taken again before the engine
    /// rebuilt its state and started a new generation.
    stale: AtomicBool,
    commits: CommitMetrics,
}

/// What the group commits took, for `GET /metrics`: recorded by [`Batch::finish`], so a single
/// server's writer and a member's proposer record alike.
#[derive(Debug)]
pub struct CommitMetrics {
    /// Entries per successful group commit.
    pub entries: Histogram,
    /// From a group commit's start until its entries are durable: on a single server the SQLite
    /// transaction and its fsync; on a member, until a majority of the members holds it.
    pub seconds: Histogram,
    /// Group commits that failed.
    pub failed: AtomicU64,
}

impl Health {
    fn refuse(&self, refusal: Refusal) {
        self.failed.store(true, Ordering::SeqCst);
        self.failure.send_replace(Some(refusal));
    }

    fn fail(&self, reason: String) {
        self.refuse(Refusal::Failed(reason));
    }

    fn store(&self) -> Store {
        self.store.lock().clone()
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("event", &self.event)
            .finish()
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

    /// A commit that is durable already, as entry `seq`.
    pub fn ready(seq: u64) -> Self {
        let (done, receiver) = oneshot::channel();
        let _ = done.send(Ok(seq));
        Self(receiver)
    }
}

impl Writer {
    /// Starts the writer task. It stops when `shutdown` is cancelled, after committing what was
    /// queued.
    pub fn spawn(store: Store, shutdown: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (writer, queue) = Self::channel(store);
        (writer, Self::run(queue, shutdown))
    }

    /// Starts the task that commits `queue` to the writer's own store (a single server's).
    pub fn run(queue: Queue, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(run_writer(queue, shutdown))
    }

    /// A writer whose queue someone else drains: a failover network's member commits through
    /// its Raft log instead of its own store. It starts taking changes.
    pub fn channel(store: Store) -> (Self, Queue) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let health = Arc::new(Health {
            failed: AtomicBool::new(false),
            failure: watch::Sender::new(None),
            store: Mutex::new(store),
            committed: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            stale: AtomicBool::new(false),
            commits: CommitMetrics {
                entries: Histogram::new(COUNTS),
                seconds: Histogram::new(SECONDS),
                failed: AtomicU64::new(0),
            },
        });
        (
            Self {
                queue,
                health: health.clone(),
            },
            Queue { receiver, health },
        )
    }

    /// Queues `event`; call this under the same lock that applied it in memory, so the ledger's
    /// order is the order of the decisions.
    pub fn append(&self, at: OffsetDateTime, event: Event) -> Commit {
        self.send(Some((at, event)))
    }

    /// A commit that resolves once everything appended before it is durable.
    pub fn barrier(&self) -> Commit {
        self.send(None)
    }

    /// Whether changes are refused: after a failed write (memory may hold what the disk does
    /// not), or on a member that may not decide now.
    pub fn has_failed(&self) -> bool {
        self.health.failed.load(Ordering::SeqCst)
    }

    /// Why changes cannot be recorded, while they cannot.
    pub fn refusal(&self) -> Option<Refusal> {
        self.health.failure.borrow().clone()
    }

    /// Resolves once a write has failed (at once if one has and [`Writer::resume`] has not been
    /// called since); a refusal for want of a quorum is not a failed write.
    pub async fn failed(&self) {
        let mut failure = self.health.failure.subscribe();
        // The sender lives as long as `self`, so this cannot end with an error.
        let _ = failure
            .wait_for(|f| matches!(f, Some(Refusal::Failed(_))))
            .await;
    }

    /// The sequence number of the last row committed (0 if none yet since the server started).
    pub fn committed(&self) -> u64 {
        self.health.committed.load(Ordering::SeqCst)
    }

    /// What the group commits took so far.
    pub fn commit_metrics(&self) -> &CommitMetrics {
        &self.health.commits
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
    /// ledger on disk says, and under its lock, so no change is decided on the state before;
    /// whatever was queued before is refused, never written.
    pub fn resume(&self, store: Store) {
        *self.health.store.lock() = store;
        self.new_generation();
        self.accept();
    }

    /// Refuses changes from now on, for `refusal`'s reason. What is queued is still committed
    /// unless [`Writer::new_generation`] follows.
    pub fn refuse(&self, refusal: Refusal) {
        self.health.refuse(refusal);
    }

    /// Takes changes again (after [`Writer::refuse`]), unless memory ran ahead of what was
    /// committed and the engine has not rebuilt since ([`Queue::refuse_until_rebuilt`]).
    pub fn accept(&self) {
        if self.health.stale.load(Ordering::SeqCst) {
            return;
        }
        self.health.failure.send_replace(None);
        self.health.failed.store(false, Ordering::SeqCst);
    }

    /// Starts a new generation: whatever was queued before is refused, never committed (it was
    /// decided on a state the engine has since replaced, or is about to). The new generation's
    /// number.
    pub fn new_generation(&self) -> u64 {
        self.health.stale.store(false, Ordering::SeqCst);
        self.health.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Sets the last committed row's number: the entry a state rebuilt or caught up reaches.
    pub fn set_committed(&self, seq: u64) {
        self.health.committed.store(seq, Ordering::SeqCst);
    }

    fn send(&self, event: Option<(OffsetDateTime, Event)>) -> Commit {
        let (done, receiver) = oneshot::channel();
        if self.has_failed() {
            let error = match self.refusal() {
                Some(Refusal::NoQuorum(reason) | Refusal::Following(reason)) => {
                    LedgerError::NoQuorum(reason)
                }
                _ => LedgerError::WriteFailed("an earlier write failed".to_owned()),
            };
            let _ = done.send(Err(error));
        } else {
            let generation = self.health.generation.load(Ordering::SeqCst);
            if let Err(mpsc::error::SendError(pending)) = self.queue.send(Pending {
                event,
                generation,
                done,
            }) {
                let _ = pending.done.send(Err(LedgerError::WriteFailed(
                    "the ledger writer stopped".to_owned(),
                )));
            }
        }
        Commit(receiver)
    }
}

/// The writer's queue, as the task that commits it sees it.
#[derive(Debug)]
pub struct Queue {
    receiver: mpsc::UnboundedReceiver<Pending>,
    health: Arc<Health>,
}

impl Queue {
    /// The next group commit's worth (see [`next_batch`]); what an earlier generation queued is
    /// refused on the way. `None` once shut down and drained.
    pub async fn next(&mut self, max: usize, shutdown: &CancellationToken) -> Option<Batch> {
        let items = next_batch(&mut self.receiver, max, shutdown).await?;
        let generation = self.health.generation.load(Ordering::SeqCst);
        let mut events = Vec::with_capacity(items.len());
        let mut waiting = Vec::with_capacity(items.len());
        for pending in items {
            if pending.generation != generation {
                let _ = pending.done.send(Err(LedgerError::NoQuorum(
                    "the change was decided before the coordinator changed; try again".to_owned(),
                )));
                continue;
            }
            waiting.push((pending.event.is_some(), pending.done));
            events.extend(pending.event);
        }
        Some(Batch {
            events,
            waiting,
            generation,
            health: self.health.clone(),
            started: std::time::Instant::now(),
        })
    }

    /// Whether a write failed and was not recovered from yet.
    fn has_failed(&self) -> bool {
        self.health.failed.load(Ordering::SeqCst)
    }

    /// The sequence number of the last row committed: what the next batch follows.
    pub fn committed(&self) -> u64 {
        self.health.committed.load(Ordering::SeqCst)
    }

    /// Refuses changes from now on, for `refusal`'s reason, until the engine has rebuilt its
    /// state and started a new generation: what it decided was not all committed.
    pub fn refuse_until_rebuilt(&self, refusal: Refusal) {
        self.health.stale.store(true, Ordering::SeqCst);
        self.health.refuse(refusal);
    }
}

/// One group commit: its events, in order, and the requests waiting for them.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<(OffsetDateTime, Event)>,
    /// Per request in queue order: whether it is an event (else a barrier), and its answer.
    waiting: Vec<(bool, oneshot::Sender<Result<u64, LedgerError>>)>,
    generation: u64,
    health: Arc<Health>,
    started: std::time::Instant,
}

impl Batch {
    /// The generation its events were decided in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Answers every request: with its event's sequence number from `result` (one per event, in
    /// order), a barrier with the last number before it, or everyone with the error.
    pub fn finish(self, result: Result<Vec<u64>, LedgerError>) {
        let mut last = self.health.committed.load(Ordering::SeqCst);
        let commits = &self.health.commits;
        match result {
            Ok(seqs) if seqs.is_empty() => {
                // Barriers only: nothing was written, so nothing to measure.
                for (_, done) in self.waiting {
                    let _ = done.send(Ok(last));
                }
            }
            Ok(seqs) => {
                commits.seconds.observe_duration(self.started.elapsed());
                #[allow(clippy::cast_precision_loss)]
                commits.entries.observe(seqs.len() as f64);
                let mut seqs = seqs.into_iter();
                for (is_event, done) in self.waiting {
                    if is_event {
                        last = last.max(seqs.next().unwrap_or(0));
                    }
                    let _ = done.send(Ok(last));
                }
                self.health.committed.fetch_max(last, Ordering::SeqCst);
            }
            Err(e) => {
                commits.failed.fetch_add(1, Ordering::Relaxed);
                for (_, done) in self.waiting {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
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

async fn run_writer(mut queue: Queue, shutdown: CancellationToken) {
    let mut appender = None;
    let mut since_checkpoint = 0;
    let mut checkpointing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let Some(batch) = queue.next(MAX_BATCH, &shutdown).await else {
            if let Some(checkpoint) = checkpointing {
                let _ = checkpoint.await;
            }
            return;
        };
        let rows: Vec<NewLedgerRow> = batch.events.iter().map(|(at, e)| e.row(*at)).collect();
        let health = &queue.health;
        let started = std::time::Instant::now();
        let result = if queue.has_failed() {
            Err(LedgerError::WriteFailed(
                "an earlier write failed".to_owned(),
            ))
        } else if rows.is_empty() {
            Ok(Vec::new())
        } else {
            append(health, &mut appender, &rows).await.map_err(|e| {
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
        batch.finish(result);
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
            .map(|i| writer.append(OffsetDateTime::now_utc(), refused(i)))
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
                .append(OffsetDateTime::now_utc(), refused(502))
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
