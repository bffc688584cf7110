//! What the engine holds right now, counted for `GET /metrics`: sessions by status, requests
//! waiting per cartridge, and how far the newest snapshot is behind. Counted under the lock in one
//! pass; the per-cartridge counters come from [`Engine::all_stats`].

use std::{collections::BTreeMap, sync::atomic::Ordering};

use models::SessionStatus;

use super::{machine::Engine, state::CartridgeKey};
use crate::ledger::writer::CommitMetrics;

/// The engine's levels at one instant.
#[derive(Debug, Default)]
pub struct Gauges {
    pub running: u64,
    pub finished: u64,
    pub dropped: u64,
    /// Requests waiting for a license, per (pool, product, major version) they asked for.
    pub waiting: BTreeMap<CartridgeKey, u64>,
    /// Seconds since the newest snapshot of the state was written (or loaded, at start).
    pub snapshot_age_seconds: f64,
    /// Ledger entries committed since the newest snapshot: what a start would replay.
    pub entries_since_snapshot: u64,
    /// The last ledger entry committed (or applied, on a member that follows).
    pub committed: u64,
}

impl Engine {
    pub fn gauges(&self) -> Gauges {
        let mut gauges = Gauges::default();
        let committed = {
            let state = self.lock();
            for session in state.sessions.values() {
                match session.status {
                    SessionStatus::Running => gauges.running += 1,
                    SessionStatus::Finished => gauges.finished += 1,
                    SessionStatus::Dropped => gauges.dropped += 1,
                }
            }
            for waiter in &state.waiters {
                let pool = state
                    .sessions
                    .get(&waiter.session_id)
                    .and_then(|s| s.pool.clone());
                let key = (
                    pool,
                    waiter.request.product_id,
                    waiter.request.major_version,
                );
                *gauges.waiting.entry(key).or_default() += 1;
            }
            self.writer.committed().max(state.applied_seq)
        };
        let (covered, at) = self.snapshots.last();
        gauges.snapshot_age_seconds = at.elapsed().as_secs_f64();
        gauges.entries_since_snapshot = committed.saturating_sub(covered).max(
            self.snapshots
                .rebuilt
                .load(Ordering::SeqCst)
                .saturating_sub(covered),
        );
        gauges.committed = committed;
        gauges
    }

    /// What the ledger's group commits took so far.
    pub fn commit_metrics(&self) -> &CommitMetrics {
        self.writer.commit_metrics()
    }
}
