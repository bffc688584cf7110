//! Taking snapshots while serving, and signing the ledger's head.
//!
//! [`Engine::run_snapshots`] writes one after `every_entries` new entries or after `interval`
//! (`SnapshotPolicy`), and `serve` writes a last one when the server stops. A snapshot must be
//! the state as of a ledger entry, yet memory runs ahead of the disk (decisions are applied before
//! they are durable). So, under the engine's lock, the state is copied ([`Body::of`]) and a
//! barrier is queued behind everything applied so far; once the barrier is durable, it names
//! the last entry the writer committed before it, which is exactly what the copy covers (rows
//! other processes append, installs and users, do not change the engine's state). The lock is
//! held only for the copy (the *pause*, logged with every snapshot); compressing and writing it
//! happen outside. The snapshot, its signed head and the pruning of older ones are one
//! transaction; the head file is replaced atomically after it. A crash at any point leaves the
//! previous snapshot and head in place, both still valid.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use ed25519_dalek::SigningKey;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::{
    machine::Engine,
    snapshot::{Body, FORMAT},
};
use crate::{
    ledger::{
        Commit,
        head::{self, SignedHead},
    },
    store::{SnapshotRow, Store},
};

/// How often the snapshot task looks at the ledger's progress (two atomic reads).
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// How long after a failed snapshot the next try waits: each try copies the state under the
/// engine's lock, which must not happen five times a second on a disk that stays full.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Writes `body`, the state as of entry `seq` whose hash is `hash`, as a snapshot signed with the
/// server's key, keeping the newest `keep`; then the head file. Its size in bytes.
pub async fn save(
    store: &Store,
    signer: &HeadSigner,
    keep: u32,
    body: Body,
    seq: u64,
    hash: String,
) -> anyhow::Result<usize> {
    let (bytes, sha) = tokio::task::spawn_blocking(move || body.encode()).await?;
    let head = SignedHead::sign(&signer.key, seq, &hash, false, Some(sha.clone()));
    let size = bytes.len();
    store
        .save_snapshot(
            &SnapshotRow {
                seq,
                hash,
                taken_at: head.signed_at.clone(),
                format: FORMAT,
                body: bytes,
                body_sha256: sha,
                head: head.to_json(),
            },
            keep,
        )
        .await?;
    let dir = signer.dir.clone();
    tokio::task::spawn_blocking(move || head::write_file(&dir, &head))
        .await?
        .context("cannot write the signed head")?;
    Ok(size)
}

/// The server's own key, which signs the ledger's heads, and the data directory that keeps the
/// newest head.
#[derive(Debug, Clone)]
pub struct HeadSigner {
    pub key: SigningKey,
    pub dir: PathBuf,
}

/// The snapshot bookkeeping of an [`Engine`].
#[derive(Debug)]
pub(super) struct Snapshots {
    pub(super) signer: HeadSigner,
    /// The last entry the state was rebuilt up to (at start or by a recovery): a snapshot taken
    /// before the writer commits anything covers that.
    pub(super) rebuilt: AtomicU64,
    /// The snapshot the start loaded (its entry and hash): what the audit checks up to.
    pub(super) loaded_from: Option<(u64, String)>,
    /// The entry the newest snapshot covers, and when it was taken.
    last: Mutex<(u64, Instant)>,
    /// One snapshot at a time.
    taking: tokio::sync::Mutex<()>,
}

impl Snapshots {
    pub(super) fn new(
        signer: HeadSigner,
        rebuilt: u64,
        loaded_from: Option<(u64, String)>,
    ) -> Self {
        Self {
            signer,
            rebuilt: AtomicU64::new(rebuilt),
            last: Mutex::new((
                loaded_from.as_ref().map_or(0, |(seq, _)| *seq),
                Instant::now(),
            )),
            loaded_from,
            taking: tokio::sync::Mutex::new(()),
        }
    }

    /// The entry the newest snapshot covers, and when it was taken.
    pub(super) fn last(&self) -> (u64, Instant) {
        *self.last.lock()
    }
}

/// A snapshot written: what it covers and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub seq: u64,
    /// How long the engine's lock was held to copy the state.
    pub pause: Duration,
    pub bytes: usize,
    /// From start to written, pause included.
    pub took: Duration,
}

impl Engine {
    /// Writes snapshots by the policy until `shutdown`. The entries a start replayed count as
    /// new: a start from genesis on a long ledger writes one at once, so the next start does not
    /// replay them again. After a failure, it waits [`RETRY_AFTER`] before the next try.
    pub async fn run_snapshots(self: Arc<Self>, shutdown: CancellationToken) {
        let policy = self.config.snapshots;
        let mut retry_at: Option<Instant> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
            if retry_at.is_some_and(|at| Instant::now() < at) {
                continue;
            }
            let (covered, at) = *self.snapshots.last.lock();
            let reached = self
                .writer
                .committed()
                .max(self.snapshots.rebuilt.load(Ordering::SeqCst));
            let due = reached >= covered.saturating_add(policy.every_entries)
                || (reached > covered && at.elapsed() >= policy.interval);
            if !due {
                continue;
            }
            retry_at = None;
            if let Err(e) = self.take_snapshot().await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_in_s = RETRY_AFTER.as_secs(),
                    "cannot write a snapshot of the ledger's state; will try again"
                );
                retry_at = Some(Instant::now() + RETRY_AFTER);
            }
        }
    }

    /// Writes a snapshot of the state as of the last durable entry: see the module's
    /// documentation. `None` when the ledger is empty.
    pub async fn take_snapshot(&self) -> anyhow::Result<Option<Taken>> {
        let _one = self.snapshots.taking.lock().await;
        let started = Instant::now();
        let (body, barrier, pause) = {
            let state = self.lock();
            self.check_writable()
                .map_err(|_| anyhow::anyhow!("the ledger takes no writes"))?;
            let copying = Instant::now();
            let body = Body::copy(&state);
            let barrier = self.coverage(&state);
            (body, barrier, copying.elapsed())
        };
        let body = tokio::task::spawn_blocking(move || body.sorted()).await?;
        let Some((seq, hash)) = self.covered_by(barrier).await? else {
            return Ok(None);
        };
        let store = self.writer.store();
        let size = save(
            &store,
            &self.snapshots.signer,
            self.config.snapshots.keep,
            body,
            seq,
            hash,
        )
        .await?;
        *self.snapshots.last.lock() = (seq, Instant::now());
        let taken = Taken {
            seq,
            pause,
            bytes: size,
            took: started.elapsed(),
        };
        tracing::info!(
            seq,
            pause_us = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX),
            took_ms = u64::try_from(taken.took.as_millis()).unwrap_or(u64::MAX),
            bytes = size,
            "snapshot of the ledger's state written"
        );
        Ok(Some(taken))
    }

    /// The entry (number and hash) that what was applied before `barrier` was queued covers,
    /// once the barrier is durable: the last the writer committed before it, or the one the
    /// state was rebuilt up to. `None` while the ledger is empty.
    pub(super) async fn covered_by(
        &self,
        barrier: Commit,
    ) -> anyhow::Result<Option<(u64, String)>> {
        let seq = barrier
            .durable()
            .await?
            .max(self.snapshots.rebuilt.load(Ordering::SeqCst));
        if seq == 0 {
            return Ok(None);
        }
        let hash = self
            .writer
            .store()
            .ledger_hash(seq)
            .await?
            .with_context(|| format!("ledger entry {seq} is not in the store"))?;
        Ok(Some((seq, hash)))
    }

    /// Signs the ledger's last entry as the head of a server that is running (`stopped` false)
    /// or that stopped cleanly, after its writer finished: nothing but a running server appends
    /// sessions and grants, so none may follow a stopped head.
    pub async fn sign_head(&self, stopped: bool) -> anyhow::Result<()> {
        let Some((seq, hash)) = self.writer.store().ledger_tail().await? else {
            return Ok(());
        };
        let signer = self.snapshots.signer.clone();
        let head = SignedHead::sign(&signer.key, seq, &hash, stopped, None);
        tokio::task::spawn_blocking(move || head::write_file(&signer.dir, &head))
            .await?
            .context("cannot write the signed head")
    }
}
