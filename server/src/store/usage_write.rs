//! Writing the usage tables: a fold's [`Delta`] added to the totals, with the open sessions and
//! licenses and the cursor, in one transaction (see [`super::usage`]).

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{
    database::{Store, StoreError, Sync, to_sql},
    license_history::write_license_changes,
    usage::{Cartridge, DayTotals, Delta},
};

/// Rows written per statement (SQLite binds at most 32,766 values).
const ROWS_PER_STATEMENT: usize = 1_000;

impl Store {
    /// Adds `delta` to the totals and moves the cursor (if it names one), in one transaction.
    /// Deferred: the totals are rebuilt from the ledger if a crash loses the last ones.
    pub async fn write_usage(&self, delta: &Delta) -> Result<(), StoreError> {
        let seq = delta.cursor.as_ref().map(|c| to_sql(c.seq)).transpose()?;
        self.write_tx_with(Sync::Deferred, async |conn| {
            write_hours(conn, delta).await?;
            write_days(conn, delta).await?;
            write_refusals(conn, delta).await?;
            write_open(conn, delta).await?;
            write_license_changes(conn, &delta.licenses).await?;
            let (Some(cursor), Some(seq)) = (&delta.cursor, seq) else {
                return Ok(());
            };
            sqlx::query(
                "INSERT INTO usage_cursor (id, seq, hash, at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                     at = excluded.at",
            )
            .bind(seq)
            .bind(&cursor.hash)
            .bind(cursor.at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
        .await
    }
}

async fn write_hours(conn: &mut SqliteConnection, delta: &Delta) -> Result<(), StoreError> {
    let rows: Vec<_> = delta.hours.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_hours
                 (pool, product_id, major_version, hour, grants, held_seconds, peak, credits) ",
        );
        query.push_values(chunk, |mut row, ((c, hour), t)| {
            row.push_bind(&c.pool)
                .push_bind(c.product_id)
                .push_bind(c.major_version)
                .push_bind(*hour)
                .push_bind(to_sql(t.grants).unwrap_or(i64::MAX))
                .push_bind(to_sql(t.held_seconds).unwrap_or(i64::MAX))
                .push_bind(t.peak)
                .push_bind(to_sql(t.credits).unwrap_or(i64::MAX));
        });
        query.push(
            " ON CONFLICT (hour, pool, product_id, major_version) DO UPDATE SET
                 grants = grants + excluded.grants,
                 held_seconds = held_seconds + excluded.held_seconds,
                 peak = MAX(peak, excluded.peak),
                 credits = credits + excluded.credits",
        );
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The daily rows per party, summed into the host table and the user table.
async fn write_days(conn: &mut SqliteConnection, delta: &Delta) -> Result<(), StoreError> {
    let mut hosts: HashMap<(&Cartridge, &str, i64), DayTotals> = HashMap::new();
    let mut users: HashMap<(&Cartridge, (&str, &str), i64), DayTotals> = HashMap::new();
    for ((c, p, day), t) in &delta.days {
        hosts.entry((c, &p.host, *day)).or_default().add(t);
        users
            .entry((c, (&p.realm, &p.principal), *day))
            .or_default()
            .add(t);
    }
    let hosts: Vec<_> = hosts.into_iter().collect();
    for chunk in hosts.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_host_days (day, pool, product_id, major_version, host, grants,
                 held_seconds, credits) ",
        );
        query.push_values(chunk, |mut row, ((c, host, day), t)| {
            row.push_bind(*day)
                .push_bind(&c.pool)
                .push_bind(c.product_id)
                .push_bind(c.major_version)
                .push_bind(*host);
            bind_day_totals(row, t);
        });
        query.push(
            " ON CONFLICT (day, pool, product_id, major_version, host) DO UPDATE SET
                 grants = grants + excluded.grants,
                 held_seconds = held_seconds + excluded.held_seconds,
                 credits = credits + excluded.credits",
        );
        query.build().execute(&mut *conn).await?;
    }
    let users: Vec<_> = users.into_iter().collect();
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_user_days (day, pool, product_id, major_version, realm,
                 principal, grants, held_seconds, credits) ",
        );
        query.push_values(chunk, |mut row, ((c, (realm, principal), day), t)| {
            row.push_bind(*day)
                .push_bind(&c.pool)
                .push_bind(c.product_id)
                .push_bind(c.major_version)
                .push_bind(*realm)
                .push_bind(*principal);
            bind_day_totals(row, t);
        });
        query.push(
            " ON CONFLICT (day, pool, product_id, major_version, realm, principal)
             DO UPDATE SET grants = grants + excluded.grants,
                 held_seconds = held_seconds + excluded.held_seconds,
                 credits = credits + excluded.credits",
        );
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

fn bind_day_totals(
    mut row: sqlx::query_builder::Separated<'_, '_, Sqlite, &'static str>,
    t: &DayTotals,
) {
    row.push_bind(to_sql(t.grants).unwrap_or(i64::MAX))
        .push_bind(to_sql(t.held_seconds).unwrap_or(i64::MAX))
        .push_bind(to_sql(t.credits).unwrap_or(i64::MAX));
}

async fn write_refusals(conn: &mut SqliteConnection, delta: &Delta) -> Result<(), StoreError> {
    let rows: Vec<_> = delta.refusals.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_refusals
                 (hour, pool, product_id, major_version, reason, refusals) ",
        );
        query.push_values(chunk, |mut row, (key, n)| {
            let (product, major) = key
                .product
                .map_or((-1, 0), |(p, m)| (i64::from(p), i64::from(m)));
            row.push_bind(key.hour)
                .push_bind(&key.pool)
                .push_bind(product)
                .push_bind(major)
                .push_bind(&key.reason)
                .push_bind(to_sql(**n).unwrap_or(i64::MAX));
        });
        query.push(
            " ON CONFLICT (hour, pool, product_id, major_version, reason)
             DO UPDATE SET refusals = refusals + excluded.refusals",
        );
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The sessions and licenses opened and closed.
async fn write_open(conn: &mut SqliteConnection, delta: &Delta) -> Result<(), StoreError> {
    for (id, party) in &delta.sessions {
        let id = to_sql(*id)?;
        match party {
            Some(p) => {
                sqlx::query(
                    "INSERT OR REPLACE INTO usage_sessions (session_id, host, realm, principal)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .bind(id)
                .bind(&p.host)
                .bind(&p.realm)
                .bind(&p.principal)
                .execute(&mut *conn)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM usage_sessions WHERE session_id = ?1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?
            }
        };
    }
    for (id, held) in &delta.held {
        let id = to_sql(*id)?;
        match held {
            Some(h) => {
                sqlx::query(
                    "INSERT OR REPLACE INTO usage_held (license_id, pool, product_id,
                         major_version, host, realm, principal, since)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .bind(id)
                .bind(&h.cartridge.pool)
                .bind(h.cartridge.product_id)
                .bind(h.cartridge.major_version)
                .bind(&h.party.host)
                .bind(&h.party.realm)
                .bind(&h.party.principal)
                .bind(h.since)
                .execute(&mut *conn)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM usage_held WHERE license_id = ?1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?
            }
        };
    }
    Ok(())
}
