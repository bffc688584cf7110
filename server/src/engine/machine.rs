//! The engine itself: the state under one lock, the ledger writer it records into, and the
//! inventory it grants from. Built by replaying the ledger ([`Engine::load`]); changed only by
//! [`Engine::record`], which applies an event and queues it under the caller's lock.

use std::{
    collections::HashSet,
    sync::{Arc, OnceLock},
};

use models::SessionStatus;
use parking_lot::{Mutex, MutexGuard};
use time::OffsetDateTime;

use super::{
    config::EngineConfig,
    error::EngineError,
    history::History,
    snapshot::{Restored, restore},
    snapshots::{HeadSigner, Snapshots},
    state::{Role, State},
};
use crate::{
    ledger::{Commit, Event, LedgerError, Refusal, Writer},
    licensing::inventory::Inventory,
    store::Store,
    sys::changes::Changes,
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
    pub(super) snapshots: Snapshots,
    /// Set when the audit found the ledger edited before the snapshot: no change is taken again.
    pub(super) tampered: OnceLock<String>,
    /// On a member of a failover network: the sessions this member heard a heartbeat for since
    /// it last told the coordinator (see `replica`).
    pub(super) heard: Mutex<HashSet<u64>>,
    /// Bumped at every change of `state`, under its lock.
    pub(super) changes: Changes,
}

impl Engine {
    /// Rebuilds the state from the newest snapshot and the ledger entries after it, each
    /// verified (see `snapshot`), and signs the ledger's head as that of a running server. A
    /// broken chain, or a ledger cut short or rewritten before its signed head, is an error naming
    /// it: a server must not grant from a history someone has edited.
    ///
    /// A member of a failover network (`role` [`Role::Following`]) starts following: it decides
    /// nothing until its member coordinates (see `replica`).
    pub async fn load(
        store: &Store,
        writer: Writer,
        inventory: Arc<Inventory>,
        config: EngineConfig,
        server_id: String,
        signer: HeadSigner,
        role: Role,
    ) -> anyhow::Result<Self> {
        let started = std::time::Instant::now();
        let Restored {
            mut state,
            tail,
            snapshot,
            replayed,
        } = rebuild(store, &signer, config.keep_ended).await?;
        let now = config.clock.now();
        let mut running = 0;
        for session in state.sessions.values_mut() {
            if session.status == SessionStatus::Running {
                session.last_heartbeat = now;
                running += 1;
            }
        }
        tracing::info!(
            entries = tail.0,
            snapshot = snapshot
                .as_ref()
                .map_or_else(|| "none".to_owned(), |(seq, _)| seq.to_string()),
            replayed,
            running_sessions = running,
            took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "ledger verified and replayed"
        );
        state.role = role;
        state.applied_seq = tail.0;
        if role == Role::Following {
            writer.refuse(Refusal::NoQuorum(
                "this member has not found the failover network's coordinator yet".to_owned(),
            ));
            writer.set_committed(tail.0);
        }
        let engine = Self {
            state: Mutex::new(state),
            history: History::default(),
            writer,
            inventory,
            config,
            server_id,
            snapshots: Snapshots::new(signer, tail.0, snapshot),
            tampered: OnceLock::new(),
            heard: Mutex::default(),
            changes: Changes::default(),
        };
        // From here on a crash may leave sessions after the head: it must not say "stopped".
        engine.sign_head(false).await?;
        Ok(engine)
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
        self.changes.bump();
        self.writer.append(at, event)
    }

    /// The count of the state's changes, and a wake-up at each next one.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.watch()
    }

    pub(super) fn check_writable(&self) -> Result<(), EngineError> {
        if self.tampered.get().is_some() {
            return Err(EngineError::LedgerUnavailable);
        }
        if !self.writer.has_failed() {
            return Ok(());
        }
        match self.writer.refusal() {
            None => Ok(()),
            Some(Refusal::Failed(_)) => Err(EngineError::LedgerUnavailable),
            Some(Refusal::NoQuorum(reason) | Refusal::Following(reason)) => {
                Err(EngineError::NoQuorum(reason))
            }
        }
    }

    /// A commit that resolves with the ledger entry that `state`, as it is under the caller's
    /// lock, covers: a barrier behind what was applied, or, on a member that follows (whose
    /// state holds only what it applied from the replicated log), that entry at once.
    pub(super) fn coverage(&self, state: &State) -> Commit {
        if state.role == Role::Following {
            Commit::ready(state.applied_seq)
        } else {
            self.writer.barrier()
        }
    }
}

/// The state the ledger in `store` says, after checking every entry after the snapshot used.
pub(super) async fn rebuild(
    store: &Store,
    signer: &HeadSigner,
    keep_ended: usize,
) -> anyhow::Result<Restored> {
    restore(store, &signer.key.verifying_key(), &signer.dir, keep_ended).await
}

/// A failed ledger write, as the request that waited for it hears it: the server cannot record
/// changes (the details go to the log, once per request).
pub(super) fn from_ledger(error: LedgerError) -> EngineError {
    if let LedgerError::NoQuorum(reason) = error {
        return EngineError::NoQuorum(reason);
    }
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
