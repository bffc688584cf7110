//! What a ledger report says: the head, the links to entries reported before, and the usage of
//! every cartridge, all as of one durable ledger entry.

use super::reported;
use crate::{
    app::AppState,
    ledger::segment,
    licensing::ledger_report::{LedgerSummary, Link, MAX_LINKS, Usage},
};

/// The ledger's summary now, linking to the entries reported before and to `also` (an entry the
/// vendor asked about); `None` while the ledger is empty.
pub async fn summary(state: &AppState, also: Option<u64>) -> anyhow::Result<Option<LedgerSummary>> {
    let Some(head) = state.engine.usage_at_head().await? else {
        return Ok(None);
    };
    let mut seqs = reported::read(state.store.dir());
    seqs.extend(also);
    seqs.retain(|&seq| seq < head.seq);
    seqs.sort_unstable();
    seqs.dedup();
    let cut = seqs.len().saturating_sub(MAX_LINKS);
    let mut links = Vec::with_capacity(seqs.len() - cut);
    for seq in seqs.into_iter().skip(cut) {
        links.push(Link {
            seq,
            hash: segment::hash_at(&state.store, seq).await?,
        });
    }
    let usage = head
        .stats
        .into_iter()
        .map(|((pool, product_id, major_version), stats)| Usage {
            pool,
            product_id,
            major_version,
            runcount_grants: stats.runcount_grants,
            credit_grants: stats.credit_grants,
            used_credits: stats.used_credits,
            refused: stats.failed,
            runcount_in_use: stats.runcount_in_use,
        })
        .collect();
    Ok(Some(LedgerSummary {
        seq: head.seq,
        hash: head.hash,
        links,
        usage,
    }))
}
