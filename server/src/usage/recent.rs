//! The last day by the hour for the status page's charts: the most licenses held at once and the
//! credits used per hour of each cartridge, read from the usage totals, so that they are there
//! after a restart (the engine's own samples start again).
//!
//! It reads the tables without folding: the page is public and polled, and must not make the
//! server read its ledger. The task that follows the engine keeps the tables within seconds of
//! it; for the hours after the last entry folded in, nothing changed the level held, so the level
//! held now stands for them.

use models::{CartridgeHistory, HISTORY_HOURS, History};
use time::OffsetDateTime;

use super::{
    fold::{HOUR, hour_of},
    index::Usage,
};
use crate::store::usage::UsageFilter;

impl Usage {
    /// Fills the hours of `history` (of the cartridges of `pool`, `None` the default one) with
    /// the [`HISTORY_HOURS`] hours up to `now`.
    pub async fn recent(
        &self,
        pool: Option<&str>,
        now: OffsetDateTime,
        history: &mut History,
    ) -> anyhow::Result<()> {
        let hours = HISTORY_HOURS as i64;
        let from = hour_of(now.unix_timestamp()) - (hours - 1) * HOUR;
        let filter = UsageFilter {
            pool: Some(pool.unwrap_or_default().to_owned()),
            ..UsageFilter::default()
        };
        let (rows, cursor) = tokio::try_join!(
            self.store
                .usage_hours(from, from + hours * HOUR, HOUR, &filter),
            self.store.usage_cursor(),
        )?;
        history.hours_from = OffsetDateTime::from_unix_timestamp(from)?;
        for cartridge in &mut history.cartridges {
            cartridge.peak = vec![0; HISTORY_HOURS];
            cartridge.credits = vec![0; HISTORY_HOURS];
        }
        for (key, bucket, totals) in rows {
            let Some(i) = usize::try_from(bucket).ok().filter(|i| *i < HISTORY_HOURS) else {
                continue;
            };
            let Some(cartridge) = history
                .cartridges
                .iter_mut()
                .find(|c| c.product_id == key.product_id && c.major_version == key.major_version)
            else {
                continue;
            };
            cartridge.peak[i] = cartridge.peak[i].max(totals.peak);
            cartridge.credits[i] += totals.credits;
        }
        let since = cursor.map_or(from, |c| hour_of(c.at)).max(from);
        let first = usize::try_from((since - from) / HOUR).unwrap_or(0);
        for cartridge in &mut history.cartridges {
            hold_level(cartridge, first);
        }
        Ok(())
    }
}

/// The level held now (the last sample) in the hours from `first` on, which the tables do not
/// record yet.
fn hold_level(cartridge: &mut CartridgeHistory, first: usize) {
    let now = cartridge.samples.last().map_or(0, |s| s.runcount_in_use);
    for peak in cartridge.peak.iter_mut().skip(first) {
        *peak = (*peak).max(now);
    }
}
