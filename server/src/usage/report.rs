//! A usage report over a range: the stored totals, plus the licenses held now (whose time is
//! stored only when they are released) counted up to now.
//!
//! Without a host or user the series come from the hourly rows per cartridge, which also know the
//! peak. With one they come from the daily rows per host and user, which cannot know a peak (the
//! most licenses held at once by one user is not a sum of anything stored), so the report is by
//! the day and has none. The hosts and users lists come from the daily rows too: they count the
//! whole (UTC) days the range touches. Hosts and users are totalled apart (every pair of them
//! would be millions of rows a year), so a report on a host lists no users, and one on a user
//! no hosts.

use std::collections::{BTreeMap, HashMap};

use models::{
    USAGE_TOP, UsageCartridge, UsageParty, UsageRefusals, UsageReport, UsageSeries, UsageStep, User,
};
use time::OffsetDateTime;

use super::{
    fold::{DAY, HOUR, day_of, hour_of, split},
    index::Usage,
};
use crate::store::{
    StoreError,
    usage::{Cartridge, DayTotals, Party, PartyColumn, UsageFilter},
};

/// The most hosts (and users) a report reads from the store: the busiest by license time. The
/// list shows [`USAGE_TOP`]; the rest only adds licenses held now, which cannot lift a party
/// from outside the busiest (by history) above them unless it holds a license now. Such a party
/// is ranked by its time now alone, and counted in the total only if it has no history at all
/// in the range, which beyond this many parties cannot be told without another query.
const MOST_PARTIES: u32 = 100_000;

/// Entries a report folds in before it answers: a few seconds' worth on a busy server, and a
/// bounded wait on one that is still reading an old ledger.
pub(super) const FOLD_BEFORE_REPORT: u64 = 50_000;

/// The buckets of a report: `[from, to)` in steps of `step` seconds, `from` and `to` on bucket
/// boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: i64,
    pub to: i64,
    pub step: UsageStep,
}

impl Range {
    fn buckets(&self) -> usize {
        usize::try_from((self.to - self.from) / self.step.seconds()).unwrap_or(0)
    }

    /// The bucket of time `t`, if it is in the range.
    fn bucket(&self, t: i64) -> Option<usize> {
        (self.from..self.to)
            .contains(&t)
            .then(|| usize::try_from((t - self.from) / self.step.seconds()).ok())
            .flatten()
    }

    /// The bucket a UTC day's row goes to: the one it overlaps most (the viewer's days may be
    /// offset from UTC's).
    fn bucket_of_day(&self, day: i64) -> Option<usize> {
        let middle = day + DAY / 2;
        self.bucket(middle - (middle - self.from).rem_euclid(DAY))
    }
}

/// A cartridge installed now: what the report says of it besides its use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub cartridge: Cartridge,
    pub product: String,
    pub runcount: u32,
    /// Prepaid credits left; `None` for a cartridge without credits.
    pub credits_left: Option<i64>,
}

/// Each cartridge's series while the report is put together.
#[derive(Debug)]
struct Sheet {
    series: BTreeMap<Cartridge, UsageSeries>,
    buckets: usize,
    with_peak: bool,
}

impl Sheet {
    /// The series of `cartridge`, new if it has none yet.
    fn at(&mut self, cartridge: &Cartridge) -> &mut UsageSeries {
        let (buckets, with_peak) = (self.buckets, self.with_peak);
        self.series
            .entry(cartridge.clone())
            .or_insert_with(|| UsageSeries {
                peak: with_peak.then(|| vec![0; buckets]),
                held_seconds: vec![0; buckets],
                grants: vec![0; buckets],
                credits: vec![0; buckets],
                refusals: vec![0; buckets],
            })
    }
}

impl Usage {
    /// The report on `filter` over `range`, as of `now`, with what `installed` says of each
    /// cartridge.
    pub async fn report(
        &self,
        range: Range,
        filter: &UsageFilter,
        now: OffsetDateTime,
        installed: &[Installed],
    ) -> anyhow::Result<UsageReport> {
        let locked = self.caught_up(FOLD_BEFORE_REPORT).await?;
        let fold = locked.fold();
        let now = now.unix_timestamp();
        let by_party = filter.by_party();
        let buckets = range.buckets();
        let mut sheet = Sheet {
            series: BTreeMap::new(),
            buckets,
            with_peak: !by_party,
        };
        // Refusals by reason; none for a report on a host or user (they are kept per cartridge
        // only).
        let mut refused: BTreeMap<String, u64> = BTreeMap::new();
        let (store, step) = (&self.store, range.step.seconds());
        // The queries run at once, each on a connection of its own.
        let (day_rows, hour_rows, refusal_rows, host_rows, user_rows) = tokio::try_join!(
            async {
                match by_party {
                    true => {
                        store
                            .usage_days(range.from - DAY, range.to + DAY, filter)
                            .await
                    }
                    false => Ok(Vec::new()),
                }
            },
            async {
                match by_party {
                    true => Ok(Vec::new()),
                    false => store.usage_hours(range.from, range.to, step, filter).await,
                }
            },
            async {
                match by_party {
                    true => Ok(Vec::new()),
                    false => {
                        store
                            .usage_refusals(range.from, range.to, step, filter)
                            .await
                    }
                }
            },
            self.party_rows(range, filter, PartyColumn::Host),
            self.party_rows(range, filter, PartyColumn::User),
        )?;
        let numbered = |n: i64| usize::try_from(n).ok().filter(|i| *i < buckets);
        for (cartridge, day, totals) in day_rows {
            if let Some(i) = range.bucket_of_day(day) {
                let series = sheet.at(&cartridge);
                series.grants[i] += totals.grants;
                series.held_seconds[i] += totals.held_seconds;
                series.credits[i] += totals.credits;
            }
        }
        for (cartridge, bucket, totals) in hour_rows {
            if let Some(i) = numbered(bucket) {
                let series = sheet.at(&cartridge);
                series.grants[i] += totals.grants;
                series.held_seconds[i] += totals.held_seconds;
                series.credits[i] += totals.credits;
                if let Some(peak) = &mut series.peak {
                    peak[i] = peak[i].max(totals.peak);
                }
            }
        }
        for (key, n) in refusal_rows {
            *refused.entry(key.reason.clone()).or_default() += n;
            if let (Some((product_id, major_version)), Some(i)) = (key.product, numbered(key.hour))
            {
                let cartridge = Cartridge {
                    pool: key.pool,
                    product_id,
                    major_version,
                };
                sheet.at(&cartridge).refusals[i] += n;
            }
        }
        // The licenses held now: their time so far, and their level in the hours after the
        // last one the tables record it for.
        let held_until = now.min(range.to);
        let mut held_parties: Vec<(Party, u64)> = Vec::new();
        for held in fold.held() {
            if !filter.takes(&held.cartridge) || !filter.takes_party(&held.party) {
                continue;
            }
            let since = held.since.max(range.from);
            if since >= held_until {
                // Not held within the range.
                continue;
            }
            let series = sheet.at(&held.cartridge);
            let mut total = 0;
            for (start, seconds) in split(
                since - range.from,
                held_until - range.from,
                range.step.seconds(),
            ) {
                if let Some(i) = range.bucket(range.from + start) {
                    series.held_seconds[i] += seconds;
                    total += seconds;
                }
            }
            held_parties.push((held.party.clone(), total));
        }
        if !by_party {
            let first = fold.cursor().map_or(range.from, |c| hour_of(c.at));
            for (cartridge, series) in &mut sheet.series {
                let level = fold.level(cartridge);
                let Some(peak) = series.peak.as_mut().filter(|_| level > 0) else {
                    continue;
                };
                let mut hour = first.max(range.from);
                while hour <= hour_of(held_until.max(range.from)) && hour < range.to {
                    if let Some(i) = range.bucket(hour) {
                        peak[i] = peak[i].max(level);
                    }
                    hour += HOUR;
                }
            }
        }
        let mut refusals: Vec<UsageRefusals> = refused
            .into_iter()
            .map(|(reason, refusals)| UsageRefusals { reason, refusals })
            .collect();
        refusals.sort_by_key(|r| std::cmp::Reverse(r.refusals));
        let (hosts, hosts_total) = top(host_rows, PartyColumn::Host, &held_parties);
        let (users, users_total) = top(user_rows, PartyColumn::User, &held_parties);
        let elapsed = (held_until.max(range.from + HOUR) - range.from).max(HOUR);
        let cartridges = sheet
            .series
            .into_iter()
            .map(|(cartridge, series)| {
                cartridge_report(cartridge, series, installed, fold, elapsed)
            })
            .collect();
        Ok(UsageReport {
            from: at_time(range.from),
            to: at_time(range.to),
            step: range.step,
            buckets: u32::try_from(buckets).unwrap_or(u32::MAX),
            through: fold.cursor().map(|c| at_time(c.at)),
            complete: locked.complete,
            cartridges,
            refusals,
            hosts,
            hosts_total,
            users,
            users_total,
        })
    }

    /// The totals of the range per host or per user (of the whole UTC days it touches); `None`
    /// when the report is on a user or a host (they are totalled apart, so a report on one
    /// knows nothing of the other).
    async fn party_rows(
        &self,
        range: Range,
        filter: &UsageFilter,
        by: PartyColumn,
    ) -> Result<Option<PartyRows>, StoreError> {
        if by != PartyColumn::of(filter) && filter.by_party() {
            return Ok(None);
        }
        let (from, to) = (day_of(range.from), day_of(range.to - 1) + DAY);
        let (rows, all) = (self.store)
            .usage_parties(from, to, filter, by, MOST_PARTIES)
            .await?;
        Ok(Some(PartyRows { rows, all }))
    }
}

/// The busiest hosts or users of a range, as read from the store.
struct PartyRows {
    rows: Vec<(Party, DayTotals)>,
    /// How many there were in the store: more than `rows` when the list was cut.
    all: u64,
}

/// The busiest hosts or users (by license time, then grants) of `rows` with the licenses held
/// now, and how many there were.
fn top(rows: Option<PartyRows>, by: PartyColumn, held: &[(Party, u64)]) -> (Vec<UsageParty>, u64) {
    let Some(PartyRows { rows, all }) = rows else {
        return (Vec::new(), 0);
    };
    let key = |p: &Party| match by {
        PartyColumn::Host => Party {
            host: p.host.clone(),
            ..Party::default()
        },
        PartyColumn::User => Party {
            host: String::new(),
            ..p.clone()
        },
    };
    let mut totals: HashMap<Party, DayTotals> = HashMap::new();
    for (party, t) in rows {
        totals.entry(party).or_default().add(&t);
    }
    let stored = totals.len() as u64;
    for (party, seconds) in held {
        totals.entry(key(party)).or_default().held_seconds += seconds;
    }
    // Parties with a license now and no stored rows are new; when the store's list was cut, a
    // party missing from it may be one of those cut (see `MOST_PARTIES`).
    let new = if stored == all {
        totals.len() as u64 - stored
    } else {
        0
    };
    let total = all + new;
    let mut list: Vec<(Party, DayTotals)> = totals.into_iter().collect();
    list.sort_by(|(pa, a), (pb, b)| {
        (b.held_seconds, b.grants, pa).cmp(&(a.held_seconds, a.grants, pb))
    });
    let parties = list
        .into_iter()
        .take(USAGE_TOP)
        .map(|(party, t)| UsageParty {
            host: (by == PartyColumn::Host).then_some(party.host),
            user: (by == PartyColumn::User && !party.principal.is_empty()).then_some(User {
                realm: party.realm,
                principal: party.principal,
            }),
            grants: t.grants,
            held_seconds: t.held_seconds,
            credits_used: t.credits,
        })
        .collect();
    (parties, total)
}

/// A cartridge's totals over the range, named after what is installed (or what its grants said).
fn cartridge_report(
    cartridge: Cartridge,
    series: UsageSeries,
    installed: &[Installed],
    fold: &super::fold::Fold,
    seconds: i64,
) -> UsageCartridge {
    let now = installed.iter().find(|i| i.cartridge == cartridge);
    let product = now
        .map(|i| i.product.clone())
        .or_else(|| {
            fold.name(cartridge.product_id, cartridge.major_version)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("product {}", cartridge.product_id));
    let credits_used: u64 = series.credits.iter().sum();
    let credits_per_day =
        credits_used.saturating_mul(DAY as u64) / u64::try_from(seconds).unwrap_or(1).max(1);
    let credits_left = now.and_then(|i| i.credits_left);
    let days_left = credits_left
        .filter(|_| credits_per_day > 0)
        .map(|left| u64::try_from(left).unwrap_or(0) / credits_per_day);
    UsageCartridge {
        pool: Some(cartridge.pool).filter(|p| !p.is_empty()),
        product_id: cartridge.product_id,
        major_version: cartridge.major_version,
        product,
        runcount: now.map(|i| i.runcount),
        grants: series.grants.iter().sum(),
        peak: series
            .peak
            .as_ref()
            .map(|p| p.iter().copied().max().unwrap_or(0)),
        held_seconds: series.held_seconds.iter().sum(),
        credits_used,
        refusals: series.refusals.iter().sum(),
        credits_left,
        credits_per_day,
        days_left,
        series,
    }
}

fn at_time(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Party {
        Party {
            host: name.into(),
            ..Party::default()
        }
    }

    fn stored(held_seconds: &[(&str, u64)], all: u64) -> Option<PartyRows> {
        let rows = held_seconds
            .iter()
            .map(|(name, seconds)| {
                let totals = DayTotals {
                    grants: 1,
                    held_seconds: *seconds,
                    credits: 0,
                };
                (host(name), totals)
            })
            .collect();
        Some(PartyRows { rows, all })
    }

    #[test]
    fn a_license_held_now_lifts_a_host_and_a_new_host_is_counted_when_the_list_is_whole() {
        let held = [(host("new"), 500), (host("b"), 200)];
        let (list, total) = top(
            stored(&[("a", 300), ("b", 100)], 2),
            PartyColumn::Host,
            &held,
        );
        let order: Vec<_> = list
            .iter()
            .map(|p| (p.host.clone().unwrap(), p.held_seconds))
            .collect();
        assert_eq!(
            order,
            [("new".into(), 500), ("a".into(), 300), ("b".into(), 300)]
        );
        assert_eq!(total, 3);

        // The store's list was cut at the busiest two of 1,000: "new" may be one of the others,
        // so the total stays the store's count.
        let (list, total) = top(
            stored(&[("a", 300), ("b", 100)], 1_000),
            PartyColumn::Host,
            &held,
        );
        assert_eq!(list[0].host.as_deref(), Some("new"));
        assert_eq!(total, 1_000);
    }
}
