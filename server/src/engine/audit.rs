//! Checking, while serving, the part of the ledger a start from a snapshot did not read.
//!
//! A start verifies only the entries after the snapshot it loads: that is what makes it fast.
//! The entries before are checked by [`Engine::run_audit`] in the background, at most half of
//! one core (it pauses as long as each batch took), from genesis to the snapshot's entry, which
//! must end on the snapshot's hash. If any entry fails, the history the state was folded from
//! was edited: the server refuses every change from then on, with the first bad entry named on
//! `/ready` and in the log, exactly as if it had found it at start (which, after a restart
//! without the snapshots, it would). The signed head (`ledger::head`) covers the other edits: a
//! ledger cut short or rewritten with recomputed hashes is refused at start.

use std::{sync::Arc, time::Instant};

use tokio_util::sync::CancellationToken;

use super::machine::Engine;
use crate::ledger::Walk;

impl Engine {
    /// Verifies the entries up to the snapshot the state was loaded from (none after a start
    /// from genesis), then ends. Refuses changes for good if they do not check out.
    pub async fn run_audit(self: Arc<Self>, shutdown: CancellationToken) {
        let Some((upto, hash)) = self.snapshots.loaded_from.clone() else {
            return;
        };
        let started = Instant::now();
        match self.audit(upto, &hash, &shutdown).await {
            Ok(true) => tracing::info!(
                entries = upto,
                took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "ledger entries before the snapshot verified"
            ),
            Ok(false) => {}
            Err(why) => {
                tracing::error!(
                    error = %why,
                    "the ledger before the snapshot failed verification: it was edited; \
                     refusing all changes (`license-server ledger verify` names the entry)"
                );
                let _ = self
                    .tampered
                    .set(format!("the ledger was tampered with: {why}"));
            }
        }
    }

    /// `Ok(false)` if stopped before the end. Reads like `ledger verify` (archived segments,
    /// then the table), so an archived history is checked too.
    async fn audit(
        &self,
        upto: u64,
        hash: &str,
        shutdown: &CancellationToken,
    ) -> Result<bool, String> {
        let store = self.writer.store();
        let mut walk = Walk::from_genesis(&store);
        while walk.summary().entries < upto {
            let step = Instant::now();
            if walk
                .next_batch()
                .await
                .map_err(|e| format!("{e:#}"))?
                .is_none()
            {
                let missing = walk.summary().entries + 1;
                return Err(format!("ledger entry {missing} is not valid: missing"));
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(false),
                () = tokio::time::sleep(step.elapsed()) => {}
            }
        }
        // Entry `upto` is in the table (never archived) and its hash was just checked as part of
        // the chain: it must be the one the snapshot covers.
        let checked = store
            .ledger_hash(upto)
            .await
            .map_err(|e| format!("cannot read it: {e}"))?;
        if upto > 0 && checked.as_deref() != Some(hash) {
            return Err(format!(
                "ledger entry {upto} is not valid: it is not the entry the snapshot covers"
            ));
        }
        Ok(true)
    }
}
