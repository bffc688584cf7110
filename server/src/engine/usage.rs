//! The usage counters as of a durable ledger entry: what a ledger report tells the vendor.
//!
//! Like a snapshot ([`super::snapshots`]), the counters must be those of an entry on disk, while
//! memory runs ahead of it. So they are copied under the engine's lock with a barrier queued
//! behind everything applied so far; the entry the barrier names once durable is the one the
//! copy covers.

use super::{
    machine::Engine,
    state::{CartridgeKey, Stats},
};

/// The counters of every cartridge as of ledger entry `seq`, whose hash is `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageAtHead {
    pub seq: u64,
    pub hash: String,
    pub stats: Vec<(CartridgeKey, Stats)>,
}

impl Engine {
    /// The counters as of the last durable entry; `None` while the ledger is empty.
    pub async fn usage_at_head(&self) -> anyhow::Result<Option<UsageAtHead>> {
        let (mut stats, barrier) = {
            let state = self.lock();
            let stats: Vec<(CartridgeKey, Stats)> = state
                .stats
                .iter()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect();
            (stats, self.coverage(&state))
        };
        let Some((seq, hash)) = self.covered_by(barrier).await? else {
            return Ok(None);
        };
        stats.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Some(UsageAtHead { seq, hash, stats }))
    }
}
