//! [`Usage`]: the fold of [`super::fold`] kept up with the ledger.
//!
//! One lock covers the fold in memory and the tables: a report reads both under it, so a license
//! released is never missing from both (folded out of memory, its time not yet written) nor
//! counted twice. Catching up folds at most [`BATCH`] entries per transaction, so a server that
//! meets a year of ledger for the first time (after an upgrade) answers reports meanwhile, with
//! `complete: false`.

use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard, watch};
use tokio_util::sync::CancellationToken;

use super::fold::Fold;
use crate::{
    ledger::{Walk, chain::GENESIS_HASH},
    store::Store,
};

/// Entries folded per transaction while catching up (a batch of the ledger table, or one
/// archived segment, may be larger).
pub const BATCH: u64 = 20_000;
/// How long the task waits after a change before folding, so that a busy server's entries are
/// folded in batches rather than one by one.
const SPACING: Duration = Duration::from_secs(2);
/// How long the task waits after a failure (a ledger entry that does not check out, a full
/// disk) before it tries again.
const RETRY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Usage {
    pub(super) store: Store,
    /// `None` until first used: loading it reads the open sessions and licenses.
    fold: Mutex<Option<Fold>>,
}

/// The fold, loaded, locked, and whether it has folded in every entry there was when it looked.
pub(super) struct Locked<'a> {
    pub guard: MutexGuard<'a, Option<Fold>>,
    pub complete: bool,
}

impl Locked<'_> {
    pub fn fold(&self) -> &Fold {
        // `Usage::caught_up` loads it before it hands out a `Locked`.
        self.guard
            .as_ref()
            .unwrap_or_else(|| unreachable!("loaded"))
    }
}

impl Usage {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            fold: Mutex::new(None),
        }
    }

    /// Folds in the entries after the cursor, at most `most` of them (a batch more at worst),
    /// and keeps the lock: a report reads the tables and the memory under it.
    pub(super) async fn caught_up(&self, most: u64) -> anyhow::Result<Locked<'_>> {
        let mut guard = self.fold.lock().await;
        if guard.is_none() {
            let (cursor, sessions, held) = self.store.usage_state().await?;
            *guard = Some(Fold::resume(cursor, sessions, held));
        }
        let fold = guard
            .as_mut()
            .unwrap_or_else(|| unreachable!("loaded just above"));
        let (after, prev) = fold
            .cursor()
            .map_or((0, GENESIS_HASH.to_owned()), |c| (c.seq, c.hash.clone()));
        let mut walk = Walk::after(&self.store, after, &prev);
        let mut folded = 0;
        let complete = loop {
            if folded >= most {
                break false;
            }
            let Some(entries) = walk.next_batch().await? else {
                break true;
            };
            for entry in &entries {
                fold.apply(entry);
            }
            folded += entries.len() as u64;
            let delta = fold.take(&walk.summary().last_hash);
            if let Err(e) = self.store.write_usage(&delta).await {
                // What is in memory is ahead of the tables now: load again next time.
                *guard = None;
                return Err(e.into());
            }
        };
        Ok(Locked { guard, complete })
    }

    /// Folds in every entry after the cursor.
    pub async fn catch_up(&self) -> anyhow::Result<()> {
        while !self.caught_up(BATCH).await?.complete {
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Follows the ledger until `shutdown`: folds in what is there, then again after each change
    /// of the engine (`changes`), at most every [`SPACING`].
    pub async fn run(&self, mut changes: watch::Receiver<u64>, shutdown: CancellationToken) {
        loop {
            let wait = match self.catch_up().await {
                Ok(()) => SPACING,
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "cannot fold the ledger into the usage history; will try again"
                    );
                    RETRY
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
        }
    }
}
