//! Recovering from a failed ledger write without a restart.
//!
//! When the ledger writer fails (the disk is full, an I/O error), every change is refused with
//! `LEDGER_UNAVAILABLE` from then on, because memory may already hold decisions that the disk
//! does not: the batch that failed, and whatever was queued behind it. [`Engine::run_recovery`]
//! waits for that, then tries again with growing pauses (1 s, doubling to 30 s; a failure within a
//! minute of a recovery goes on from the pause reached). Each try:
//!
//! 1. reopens the store on new connections (the failed one is already closed, and nothing it
//!    cached is trusted; PostgreSQL, after a failed fsync, likewise recovers from what is on disk
//!    rather than from the page cache);
//! 2. writes and syncs a probe row, so a disk that is still full fails here and not on a client;
//! 3. rebuilds the state from that store (the newest snapshot and the entries after it, verified), outside the lock (while
//!    changes are refused, the state does not change but for heartbeats);
//! 4. under the lock, carries over what the ledger does not hold (heartbeats, waiting requests),
//!    puts the new state in place and resumes the writer on the reopened store, so the first change
//!    accepted again is decided on what the disk holds; then serves the waiters.
//!
//! So nothing is ever acknowledged that is not durable, and nothing a client was refused is kept.

use std::{
    mem,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use super::machine::{Engine, rebuild};
use crate::ledger::Refusal;

/// Why a server takes no changes right now, in public words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The ledger cannot be written, or was tampered with.
    Ledger(String),
    /// A member of a failover network without a coordinator that a majority stands behind.
    NoQuorum(String),
}

/// The first pause after a failure; it doubles on every failed try, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

impl Engine {
    /// Why changes are refused right now, if they are, in public words: for the readiness
    /// check. A member that follows a coordinator is ready: its requests go there.
    pub fn unavailable(&self) -> Option<Unavailable> {
        if let Some(tampered) = self.tampered.get() {
            return Some(Unavailable::Ledger(format!(
                "changes cannot be recorded: {tampered}; the server will not grant from a ledger \
                 that was tampered with (`license-server ledger verify` names the entry)"
            )));
        }
        match self.writer.refusal()? {
            Refusal::Failed(reason) => Some(Unavailable::Ledger(format!(
                "changes cannot be recorded: the ledger cannot be written ({reason}); the server \
                 retries by itself and takes changes again once writes succeed"
            ))),
            Refusal::NoQuorum(reason) => Some(Unavailable::NoQuorum(reason)),
            Refusal::Following(_) => None,
        }
    }

    /// Brings the engine back each time the ledger writer fails, until `shutdown`. A failure
    /// soon after a recovery (a disk with room for the probe but not for the load) goes on from
    /// the pause reached before, so a disk that stays nearly full is not retried every second.
    pub async fn run_recovery(self: Arc<Self>, shutdown: CancellationToken) {
        let mut pause = FIRST_PAUSE;
        let mut resumed: Option<Instant> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.writer.failed() => {}
            }
            if resumed.is_none_or(|at| at.elapsed() > LONGEST_PAUSE * 2) {
                pause = FIRST_PAUSE;
            }
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                match self.try_resume().await {
                    Ok(entries) => {
                        tracing::info!(
                            entries,
                            "the ledger takes writes again: state rebuilt from the ledger on \
                             disk, changes accepted again"
                        );
                        resumed = Some(Instant::now());
                        pause = (pause * 2).min(LONGEST_PAUSE);
                        break;
                    }
                    Err((error, reason)) => {
                        pause = (pause * 2).min(LONGEST_PAUSE);
                        tracing::warn!(
                            error = format!("{error:#}"),
                            retry_in_s = pause.as_secs(),
                            "the ledger still cannot be written; changes stay refused"
                        );
                        self.writer.still_failing(reason);
                    }
                }
            }
        }
    }

    /// One try: see the module's documentation. The number of ledger entries replayed; or the
    /// error for the log, and its reason in public words.
    async fn try_resume(&self) -> Result<u64, (anyhow::Error, String)> {
        let store = self.writer.store().reopen().await.map_err(|e| {
            let reason = e.public_reason();
            (
                anyhow::Error::new(e).context("cannot reopen the store"),
                reason,
            )
        })?;
        store.probe_write().await.map_err(|e| {
            let reason = e.public_reason();
            (
                anyhow::Error::new(e).context("the store does not take writes yet"),
                reason,
            )
        })?;
        let restored = rebuild(&store, &self.snapshots.signer, self.config.keep_ended)
            .await
            .map_err(|e| (e, "the ledger on disk failed verification".to_owned()))?;
        let (mut fresh, entries) = (restored.state, restored.tail.0);
        let now = self.now();
        let mut state = self.lock();
        fresh.carry_heartbeats(&state, now);
        fresh.waiters = mem::take(&mut state.waiters);
        fresh.next_waiter = state.next_waiter;
        *state = fresh;
        self.changes.bump();
        self.snapshots.rebuilt.store(entries, Ordering::SeqCst);
        self.writer.resume(store);
        let snapshot = self.inventory.snapshot();
        self.serve_waiters(&mut state, &snapshot, now);
        Ok(entries)
    }
}
