//! The recent past of each cartridge, sampled: runcount in use and credits used, every
//! [`INTERVAL`] for the last [`SPAN`]. The status page draws it as one small chart per cartridge.
//!
//! Sampling, rather than replaying the ledger, keeps the cost fixed (a few kilobytes per
//! cartridge, one lock per interval) whatever the traffic. The price is that the history starts
//! again at a restart; the ledger still has every event for whoever needs the exact past.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use models::{CartridgeHistory, Sample};
use parking_lot::Mutex;
use time::OffsetDateTime;

use super::state::{CartridgeKey, Stats};

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// How far back the history goes.
pub const SPAN: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<HashMap<CartridgeKey, VecDeque<Sample>>>,
}

fn sample(at: OffsetDateTime, stats: &Stats) -> Sample {
    Sample {
        at: at.replace_nanosecond(0).unwrap_or(at),
        runcount_in_use: stats.runcount_in_use,
        used_credits: stats.used_credits,
    }
}

impl History {
    /// Adds one sample per cartridge and forgets those older than [`SPAN`].
    pub fn record(&self, at: OffsetDateTime, stats: &[(CartridgeKey, Stats)]) {
        let mut samples = self.samples.lock();
        let oldest = at - SPAN;
        for (key, stats) in stats {
            let series = samples.entry(key.clone()).or_default();
            series.push_back(sample(at, stats));
            while series.front().is_some_and(|s| s.at < oldest) {
                series.pop_front();
            }
        }
    }

    /// The history of every cartridge of `pool`, each ending with a sample of `live` taken now.
    pub fn chart(
        &self,
        pool: Option<&str>,
        now: OffsetDateTime,
        live: &[(CartridgeKey, Stats)],
    ) -> models::History {
        let samples = self.samples.lock();
        let oldest = now - SPAN;
        let mut cartridges: Vec<CartridgeHistory> = live
            .iter()
            .filter(|((p, _, _), _)| p.as_deref() == pool)
            .map(|(key, stats)| {
                let mut series: Vec<Sample> = samples
                    .get(key)
                    .into_iter()
                    .flatten()
                    .filter(|s| s.at >= oldest)
                    .copied()
                    .collect();
                series.push(sample(now, stats));
                CartridgeHistory {
                    product_id: key.1,
                    major_version: key.2,
                    samples: series,
                    // Filled from the usage history (`usage::recent`), which the engine does
                    // not keep.
                    peak: Vec::new(),
                    credits: Vec::new(),
                }
            })
            .collect();
        cartridges.sort_by_key(|c| (c.product_id, c.major_version));
        models::History {
            interval_s: INTERVAL.as_secs() as u32,
            span_s: SPAN.as_secs() as u32,
            hours_from: now,
            cartridges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(in_use: u32, used: i64) -> Stats {
        Stats {
            runcount_in_use: in_use,
            used_credits: used,
            ..Stats::default()
        }
    }

    #[test]
    fn samples_older_than_the_span_are_forgotten_and_pools_stay_apart() {
        let history = History::default();
        let start = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let key = (None, 1000, 10);
        let other_pool = (Some("farm".to_owned()), 1000, 10);
        for minute in 0..90 {
            let at = start + time::Duration::minutes(minute);
            history.record(at, &[(key.clone(), stats(minute as u32 % 8, minute))]);
        }
        let now = start + time::Duration::minutes(90);
        let live = [(key.clone(), stats(3, 100)), (other_pool, stats(1, 0))];
        let chart = history.chart(None, now, &live);
        assert_eq!(chart.cartridges.len(), 1, "only the default pool");
        let samples = &chart.cartridges[0].samples;
        // Minutes 30..=89 are within the hour before minute 90, plus the live sample.
        assert_eq!(samples.len(), 61);
        assert_eq!(samples[0].at, start + time::Duration::minutes(30));
        assert_eq!(samples.last().unwrap().runcount_in_use, 3);
        assert_eq!(samples.last().unwrap().used_credits, 100);
        assert!(samples.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
