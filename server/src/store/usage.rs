//! The usage tables (`usage_*`): the ledger folded into hourly and daily totals, and what is open
//! at the last entry folded in, all written with that entry (the cursor) in one transaction, so
//! the totals are always those of a whole prefix of the ledger. What the figures mean is the
//! `usage` room's.

use std::collections::HashMap;

use sqlx::Sqlite;

use super::database::{Store, StoreError};
use super::license_history::LicenseChange;

/// A cartridge: its pool ('' for the default pool), product and major version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cartridge {
    pub pool: String,
    pub product_id: u32,
    pub major_version: u32,
}

/// Who a session runs for: its host, and the user if the vendor's program named one ('' if not).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Party {
    pub host: String,
    pub realm: String,
    pub principal: String,
}

/// A license held: since when (Unix seconds), from which cartridge, for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub cartridge: Cartridge,
    pub party: Party,
    pub since: i64,
}

/// One cartridge's figures in one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourTotals {
    pub grants: u64,
    /// Seconds of licenses held in this hour, by licenses released since.
    pub held_seconds: u64,
    /// The most licenses held at once.
    pub peak: u32,
    pub credits: u64,
}

/// One party's figures with one cartridge in one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayTotals {
    pub grants: u64,
    pub held_seconds: u64,
    pub credits: u64,
}

impl DayTotals {
    /// The sums SQLite returns, as totals.
    fn from_sql(grants: i64, held_seconds: i64, credits: i64) -> Self {
        Self {
            grants: count(grants),
            held_seconds: count(held_seconds),
            credits: count(credits),
        }
    }

    pub fn add(&mut self, other: &Self) {
        self.grants += other.grants;
        self.held_seconds += other.held_seconds;
        self.credits += other.credits;
    }
}

/// A refusal's bucket: hour, pool, product (`None`: a session refused before it asked for one),
/// major version, reason ('' if the entry predates reasons).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefusalKey {
    pub hour: i64,
    pub pool: String,
    pub product: Option<(u32, u32)>,
    pub reason: String,
}

/// The last entry folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub seq: u64,
    pub hash: String,
    pub at: i64,
}

/// What the entries folded since the last [`Fold::take`] add and change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub hours: HashMap<(Cartridge, i64), HourTotals>,
    pub days: HashMap<(Cartridge, Party, i64), DayTotals>,
    pub refusals: HashMap<RefusalKey, u64>,
    /// Sessions opened (`Some`) or closed (`None`).
    pub sessions: HashMap<u64, Option<Party>>,
    /// Licenses granted (`Some`) or released (`None`).
    pub held: HashMap<u64, Option<Held>>,
    /// Licenses installed and removed, in ledger order.
    pub licenses: Vec<LicenseChange>,
    pub cursor: Option<Cursor>,
}

/// Which rows a report reads: `None` is any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub pool: Option<String>,
    pub product_id: Option<u32>,
    pub major_version: Option<u32>,
    pub host: Option<String>,
    pub realm: Option<String>,
    pub principal: Option<String>,
}

impl UsageFilter {
    /// Whether the filter names a host or user, which only the daily rows know.
    pub fn by_party(&self) -> bool {
        self.host.is_some() || self.realm.is_some() || self.principal.is_some()
    }

    pub fn takes(&self, cartridge: &Cartridge) -> bool {
        self.pool.as_ref().is_none_or(|p| *p == cartridge.pool)
            && self.product_id.is_none_or(|p| p == cartridge.product_id)
            && self
                .major_version
                .is_none_or(|m| m == cartridge.major_version)
    }

    pub fn takes_party(&self, party: &Party) -> bool {
        self.host.as_ref().is_none_or(|h| *h == party.host)
            && self.realm.as_ref().is_none_or(|r| *r == party.realm)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == party.principal)
    }

    /// `AND …` for the filter's cartridge columns, binding ?3 to ?5.
    const CARTRIDGE: &'static str = " AND (?3 IS NULL OR pool = ?3)
        AND (?4 IS NULL OR product_id = ?4) AND (?5 IS NULL OR major_version = ?5)";
}

/// Hosts or users: which daily table a report on one reads, and what a top list groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyColumn {
    Host,
    User,
}

impl PartyColumn {
    /// The table a report with `filter` reads its daily rows from (a filter names a host or a
    /// user, never both).
    pub fn of(filter: &UsageFilter) -> Self {
        if filter.host.is_some() {
            Self::Host
        } else {
            Self::User
        }
    }

    fn table(self) -> &'static str {
        match self {
            Self::Host => "usage_host_days",
            Self::User => "usage_user_days",
        }
    }

    /// `AND …` for the filter's party (?6 to ?8) in this table: the host table knows no user, so
    /// a filter on a user takes none of its rows, and the other way round.
    fn condition(self) -> &'static str {
        match self {
            Self::Host => " AND (?6 IS NULL OR host = ?6) AND ?7 IS NULL AND ?8 IS NULL",
            Self::User => {
                " AND ?6 IS NULL AND (?7 IS NULL OR realm = ?7) AND (?8 IS NULL OR principal = ?8)"
            }
        }
    }
}

type CartridgeTuple = (String, i64, i64);

fn cartridge((pool, product_id, major_version): CartridgeTuple) -> Cartridge {
    Cartridge {
        pool,
        product_id: u32::try_from(product_id).unwrap_or_default(),
        major_version: u32::try_from(major_version).unwrap_or_default(),
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

impl Store {
    /// The last entry folded in, if any.
    pub async fn usage_cursor(&self) -> Result<Option<Cursor>, StoreError> {
        let cursor: Option<(i64, String, i64)> =
            sqlx::query_as("SELECT seq, hash, at FROM usage_cursor WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(cursor.map(|(seq, hash, at)| Cursor {
            seq: count(seq),
            hash,
            at,
        }))
    }

    /// The cursor and what was open at it, as [`Store::write_usage`] left them.
    pub async fn usage_state(
        &self,
    ) -> Result<(Option<Cursor>, HashMap<u64, Party>, HashMap<u64, Held>), StoreError> {
        let cursor = self.usage_cursor().await?;
        let sessions: Vec<(i64, String, String, String)> =
            sqlx::query_as("SELECT session_id, host, realm, principal FROM usage_sessions")
                .fetch_all(&self.pool)
                .await?;
        type HeldRow = (i64, String, i64, i64, String, String, String, i64);
        let held: Vec<HeldRow> = sqlx::query_as(
            "SELECT license_id, pool, product_id, major_version, host, realm, principal, since
             FROM usage_held",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok((
            cursor,
            sessions
                .into_iter()
                .map(|(id, host, realm, principal)| {
                    (
                        count(id),
                        Party {
                            host,
                            realm,
                            principal,
                        },
                    )
                })
                .collect(),
            held.into_iter()
                .map(
                    |(id, pool, product, major, host, realm, principal, since)| {
                        let held = Held {
                            cartridge: cartridge((pool, product, major)),
                            party: Party {
                                host,
                                realm,
                                principal,
                            },
                            since,
                        };
                        (count(id), held)
                    },
                )
                .collect(),
        ))
    }

    /// The hourly rows of `[from, to)` that `filter` takes (its host and user are not looked
    /// at), summed per cartridge into buckets of `step` seconds from `from` (the peak is the
    /// highest): `(cartridge, bucket number, totals)`. Summed here, so a year by the day is a few
    /// thousand rows out of the store rather than a hundred thousand.
    pub async fn usage_hours(
        &self,
        from: i64,
        to: i64,
        step: i64,
        filter: &UsageFilter,
    ) -> Result<Vec<(Cartridge, i64, HourTotals)>, StoreError> {
        type Row = (String, i64, i64, i64, i64, i64, i64, i64);
        let sql = format!(
            "SELECT pool, product_id, major_version, (hour - ?1) / ?9 AS bucket, SUM(grants),
                 SUM(held_seconds), MAX(peak), SUM(credits)
             FROM usage_hours WHERE hour >= ?1 AND hour < ?2{}
             GROUP BY pool, product_id, major_version, bucket",
            UsageFilter::CARTRIDGE
        );
        let rows: Vec<Row> = bind_filter(sqlx::query_as(&sql), from, to, filter)
            .bind(step.max(1))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(pool, product, major, bucket, grants, held, peak, credits)| {
                    let totals = HourTotals {
                        grants: count(grants),
                        held_seconds: count(held),
                        peak: u32::try_from(peak).unwrap_or(u32::MAX),
                        credits: count(credits),
                    };
                    (cartridge((pool, product, major)), bucket, totals)
                },
            )
            .collect())
    }

    /// The daily rows of `[from, to)` that `filter` takes, of its host or (else) its user.
    pub async fn usage_days(
        &self,
        from: i64,
        to: i64,
        filter: &UsageFilter,
    ) -> Result<Vec<(Cartridge, i64, DayTotals)>, StoreError> {
        let table = PartyColumn::of(filter).table();
        let sql = format!(
            "SELECT pool, product_id, major_version, day,
                 SUM(grants), SUM(held_seconds), SUM(credits)
             FROM {table} WHERE day >= ?1 AND day < ?2{}{}
             GROUP BY day, pool, product_id, major_version",
            UsageFilter::CARTRIDGE,
            PartyColumn::of(filter).condition()
        );
        let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> =
            bind_filter(sqlx::query_as(&sql), from, to, filter)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(pool, product, major, day, grants, held, credits)| {
                let totals = DayTotals::from_sql(grants, held, credits);
                (cartridge((pool, product, major)), day, totals)
            })
            .collect())
    }

    /// The busiest `most` hosts or users of `[from, to)` (days), by license time then grants,
    /// with their totals, and how many there were in all.
    ///
    /// Bounded because a host name is whatever a client says: a farm that gives every container
    /// a new name has millions of hosts a year, and a report lists ten.
    pub async fn usage_parties(
        &self,
        from: i64,
        to: i64,
        filter: &UsageFilter,
        by: PartyColumn,
        most: u32,
    ) -> Result<(Vec<(Party, DayTotals)>, u64), StoreError> {
        let (columns, group) = match by {
            PartyColumn::Host => ("host, '', ''", "host"),
            PartyColumn::User => ("'', realm, principal", "realm, principal"),
        };
        // `COUNT(*) OVER ()` counts the groups before the limit: one pass over the rows.
        let sql = format!(
            "SELECT {columns}, SUM(grants), SUM(held_seconds), SUM(credits), COUNT(*) OVER ()
             FROM {} WHERE day >= ?1 AND day < ?2{}{} GROUP BY {group}
             ORDER BY SUM(held_seconds) DESC, SUM(grants) DESC, {group} LIMIT ?9",
            by.table(),
            UsageFilter::CARTRIDGE,
            by.condition()
        );
        let rows: Vec<(String, String, String, i64, i64, i64, i64)> =
            bind_filter(sqlx::query_as(&sql), from, to, filter)
                .bind(i64::from(most))
                .fetch_all(&self.pool)
                .await?;
        let all = rows.first().map_or(0, |row| row.6);
        let rows = rows
            .into_iter()
            .map(|(host, realm, principal, grants, held, credits, _)| {
                let party = Party {
                    host,
                    realm,
                    principal,
                };
                let totals = DayTotals::from_sql(grants, held, credits);
                (party, totals)
            })
            .collect();
        Ok((rows, count(all)))
    }

    /// The refusals of `[from, to)` that `filter` takes (a session refused before it asked for a
    /// product is taken unless the filter names one), per bucket of `step` seconds (its number
    /// as the key's `hour`), pool, product and reason.
    pub async fn usage_refusals(
        &self,
        from: i64,
        to: i64,
        step: i64,
        filter: &UsageFilter,
    ) -> Result<Vec<(RefusalKey, u64)>, StoreError> {
        let sql = "SELECT (hour - ?1) / ?9 AS bucket, pool, product_id, major_version, reason,
                 SUM(refusals)
             FROM usage_refusals WHERE hour >= ?1 AND hour < ?2
                 AND (?3 IS NULL OR pool = ?3)
                 AND (?4 IS NULL OR product_id = ?4 OR product_id = -1)
                 AND (?5 IS NULL OR major_version = ?5 OR product_id = -1)
             GROUP BY bucket, pool, product_id, major_version, reason";
        let rows: Vec<(i64, String, i64, i64, String, i64)> =
            bind_filter(sqlx::query_as(sql), from, to, filter)
                .bind(step.max(1))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(hour, pool, product, major, reason, refusals)| {
                let product = (product >= 0).then(|| {
                    let c = cartridge((String::new(), product, major));
                    (c.product_id, c.major_version)
                });
                let key = RefusalKey {
                    hour,
                    pool,
                    product,
                    reason,
                };
                (key, count(refusals))
            })
            .collect())
    }
}

/// Binds `[from, to)` and the filter as ?1 to ?8.
fn bind_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>>,
    from: i64,
    to: i64,
    filter: &'q UsageFilter,
) -> sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>> {
    query
        .bind(from)
        .bind(to)
        .bind(filter.pool.as_deref())
        .bind(filter.product_id)
        .bind(filter.major_version)
        .bind(filter.host.as_deref())
        .bind(filter.realm.as_deref())
        .bind(filter.principal.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five hosts on one day, each busier than the next; a user's rows on another table.
    async fn store_with_hosts() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("license-server.db"))
            .await
            .unwrap();
        let cartridge = Cartridge {
            pool: "default".into(),
            product_id: 7,
            major_version: 1,
        };
        let mut delta = Delta::default();
        for (i, host) in ["e", "d", "c", "b", "a"].iter().enumerate() {
            let party = Party {
                host: (*host).into(),
                realm: "corp".into(),
                principal: format!("user{i}"),
            };
            let n = i as u64 + 1;
            let totals = DayTotals {
                grants: n,
                held_seconds: 60 * n,
                credits: 0,
            };
            delta.days.insert((cartridge.clone(), party, 0), totals);
        }
        store.write_usage(&delta).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_report_reads_only_the_busiest_parties_and_counts_them_all() {
        let (_dir, store) = store_with_hosts().await;
        let filter = UsageFilter::default();
        let (rows, all) = store
            .usage_parties(0, DAY_SECONDS, &filter, PartyColumn::Host, 2)
            .await
            .unwrap();
        let hosts: Vec<(&str, u64)> = rows
            .iter()
            .map(|(p, t)| (p.host.as_str(), t.held_seconds))
            .collect();
        assert_eq!(hosts, [("a", 300), ("b", 240)]);
        assert_eq!(all, 5);

        let (rows, all) = store
            .usage_parties(0, DAY_SECONDS, &filter, PartyColumn::User, 10)
            .await
            .unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].0.principal, "user4");
        assert_eq!(all, 5);

        // Another day: none.
        let (rows, all) = store
            .usage_parties(DAY_SECONDS, 2 * DAY_SECONDS, &filter, PartyColumn::Host, 2)
            .await
            .unwrap();
        assert!(rows.is_empty());
        assert_eq!(all, 0);
    }

    const DAY_SECONDS: i64 = 86_400;
}
