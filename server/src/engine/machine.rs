//! The engine itself: the state under one lock, the ledger writer it records into, and the
//! inventory it grants from. Built by replaying the ledger ([`Engine::load`]); changed only by
//! [`Engine::record`], which applies an event and queues it under the caller's lock.

use std::sync::Arc;

use models::SessionStatus;
use parking_lot::{Mutex, MutexGuard};
use time::OffsetDateTime;

use super::{config::EngineConfig, error::EngineError, history::History, state::State};
use crate::{
    ledger::{self, Commit, Entry, Event, LedgerError, Writer},
    licensing::inventory::Inventory,
    store::Store,
};

#[derive(Debug)]
pub struct Engine {
    /// Not poisoned by a panic: `apply` has no early exits between related changes, so a panic
    /// while holding the lock cannot leave a half-applied event. The server keeps serving.
    pub(super) state: Mutex<State>,
    /// The cartridges' recent past, sampled by `run_ticks` for the status page's charts.
    pub(super) history: History,
    pub(super) writer: Writer,
    pub(super) inventory: Arc<Inventory>,
    pub(super) config: EngineConfig,
    pub(super) server_id: String,
}

impl Engine {
    /// Verifies the ledger's chain and replays it. A broken chain is an error naming the first bad
    /// entry: a server must not grant from a history someone has edited.
    pub async fn load(
        store: &Store,
        writer: Writer,
        inventory: Arc<Inventory>,
        config: EngineConfig,
        server_id: String,
    ) -> anyhow::Result<Self> {
        let (mut state, entries) = replay(store, config.keep_ended).await?;
        let now = config.clock.now();
        let mut running = 0;
        for session in state.sessions.values_mut() {
            if session.status == SessionStatus::Running {
                session.last_heartbeat = now;
                running += 1;
            }
        }
        tracing::info!(
            entries,
            running_sessions = running,
            "ledger verified and replayed"
        );
        Ok(Self {
            state: Mutex::new(state),
            history: History::default(),
            writer,
            inventory,
            config,
            server_id,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub(super) fn now(&self) -> OffsetDateTime {
        self.config.clock.now()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Applies `event` in memory and queues it for the ledger, under the caller's lock.
    pub(super) fn record(&self, state: &mut State, at: OffsetDateTime, event: Event) -> Commit {
        state.apply(at, &event, self.config.keep_ended);
        self.writer.append(at, &event)
    }

    pub(super) fn check_writable(&self) -> Result<(), EngineError> {
        if self.writer.has_failed() {
            Err(EngineError::LedgerUnavailable)
        } else {
            Ok(())
        }
    }
}

/// The state the ledger in `store` says, after checking every entry; and how many there are.
pub(super) async fn replay(store: &Store, keep_ended: usize) -> anyhow::Result<(State, u64)> {
    let mut state = State::default();
    let summary = ledger::verify(store, |entry: &Entry| {
        state.apply(entry.at, &entry.event, keep_ended);
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "the ledger in the store failed verification: {e:#}; the server will not grant from \
             a ledger that was tampered with"
        )
    })?;
    Ok((state, summary.entries))
}

/// A failed ledger write, as the request that waited for it hears it: the server cannot record
/// changes (the details go to the log, once per request).
pub(super) fn from_ledger(error: LedgerError) -> EngineError {
    tracing::error!(error = %error, "ledger write failed");
    EngineError::LedgerUnavailable
}

/// Waits until a release is durable when it debited credits. A release of runcount licenses only
/// is answered at once: it is in the ledger's queue, in order, and a crash that lost it would only
/// keep the seat taken until the session times out, never give one away twice. That halves the
/// fsyncs a client waits for in a runcount cycle.
pub(super) async fn settle(commit: Commit, credits_used: u64) -> Result<(), EngineError> {
    if credits_used > 0 {
        commit.durable().await.map_err(from_ledger)?;
    }
    Ok(())
}
