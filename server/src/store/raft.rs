//! The `raft_log`, `raft_state` and `raft_snapshot` tables: a failover network member's Raft
//! log, its named state values, and its state machine's snapshot. What the values mean is the
//! failover room's (JSON text here); the store makes each change one transaction, and applies
//! the ledger rows a log entry carries in the same transaction as the applied log id, so a crash
//! never leaves a ledger that is ahead of, or behind, what the member says it applied.

use super::{
    database::{Store, StoreError, Sync, to_sql},
    ledger::{LedgerRow, NewLedgerRow, SqlRow, append_rows, from_sql, ledger_tail},
};
use crate::sys::timestamp::rfc3339;

/// The value of a named Raft state (`?1`).
const STATE: &str = "SELECT value FROM raft_state WHERE name = ?1";

/// Set on a failover network member's store.
const MEMBER: &str = "member";

/// A ledger row waiting in a member's outbox: (id, at, kind, body).
pub type OutboxRow = (i64, String, String, String);

/// Whether the store `conn` belongs to is a failover network member's.
pub(super) async fn is_member(conn: &mut sqlx::SqliteConnection) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar::<_, String>(STATE)
        .bind(MEMBER)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Puts `row` in the outbox, in the caller's transaction.
pub(super) async fn to_outbox(
    conn: &mut sqlx::SqliteConnection,
    row: &NewLedgerRow,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO ledger_outbox (at, kind, body) VALUES (?1, ?2, ?3)")
        .bind(rfc3339(row.at))
        .bind(row.kind)
        .bind(&row.body)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// The value named `name`, if set.
    pub async fn raft_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(STATE)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets `name` to `value`, as durably as `sync` says.
    pub async fn set_raft_state(
        &self,
        name: &str,
        value: &str,
        sync: Sync,
    ) -> Result<(), StoreError> {
        self.write_tx_with(sync, async |conn| set_state(conn, name, value).await)
            .await
    }

    /// Stores log entries (index, JSON), replacing any at the same index, in one transaction.
    pub async fn append_raft_log(&self, entries: &[(u64, String)]) -> Result<(), StoreError> {
        self.write_tx(async |conn| {
            for (index, entry) in entries {
                sqlx::query("INSERT OR REPLACE INTO raft_log (log_index, entry) VALUES (?1, ?2)")
                    .bind(to_sql(*index)?)
                    .bind(entry)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// The entries from index `from` (inclusive) to `until` (exclusive), in order.
    pub async fn raft_log(&self, from: u64, until: u64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT entry FROM raft_log WHERE log_index >= ?1 AND log_index < ?2
             ORDER BY log_index",
        )
        .bind(to_sql(from)?)
        .bind(to_sql(until.min(i64::MAX as u64))?)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The entry with the highest index.
    pub async fn raft_log_last(&self) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT entry FROM raft_log ORDER BY log_index DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Removes the entries from index `from` on (a leader's conflicting suffix).
    pub async fn truncate_raft_log(&self, from: u64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM raft_log WHERE log_index >= ?1")
            .bind(to_sql(from)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes the entries up to index `upto` (inclusive) and records `purged` under `name`, in
    /// one transaction.
    pub async fn purge_raft_log(
        &self,
        upto: u64,
        name: &str,
        purged: &str,
    ) -> Result<(), StoreError> {
        self.write_tx(async |conn| {
            sqlx::query("DELETE FROM raft_log WHERE log_index <= ?1")
                .bind(to_sql(upto)?)
                .execute(&mut *conn)
                .await?;
            set_state(conn, name, purged).await
        })
        .await
    }

    /// Applies log entries in one transaction: appends each group of rows to the ledger, if the
    /// ledger's last entry is then the one the group names (`None`: wherever it ends), and sets
    /// `state` (name, value). Per group, the sequence numbers its rows got, or `None` for a group
    /// refused because the ledger had moved on since it was decided.
    ///
    /// On disk with the next full write ([`Sync::Deferred`]): the entries are in the Raft log,
    /// durably, and a crash that loses this transaction loses the applied log id with it, so
    /// they are applied again.
    pub async fn apply_raft(
        &self,
        groups: &[(Option<u64>, Vec<NewLedgerRow>)],
        state: &[(&str, String)],
    ) -> Result<Vec<Option<Vec<u64>>>, StoreError> {
        self.write_tx_with(Sync::Deferred, async |conn| {
            let mut applied = Vec::with_capacity(groups.len());
            for (after, rows) in groups {
                let fits = match after {
                    None => true,
                    Some(after) => ledger_tail(conn).await?.map_or(0, |(seq, _)| seq) == *after,
                };
                applied.push(if fits {
                    Some(append_rows(conn, rows).await?)
                } else {
                    None
                });
            }
            for (name, value) in state {
                set_state(conn, name, value).await?;
            }
            Ok(applied)
        })
        .await
    }

    /// Makes this store a failover network member's: from now on the ledger rows of changes to
    /// other tables wait in the outbox for the network to record them.
    pub async fn mark_member(&self) -> Result<(), StoreError> {
        self.write_tx(async |conn| set_state(conn, MEMBER, "1").await)
            .await
    }

    /// Whether this store is a failover network member's.
    pub async fn is_member(&self) -> Result<bool, StoreError> {
        Ok(self.raft_state(MEMBER).await?.is_some())
    }

    /// The oldest `limit` rows waiting in the outbox: (id, at, kind, body).
    pub async fn outbox(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, at, kind, body FROM ledger_outbox ORDER BY id LIMIT ?1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Takes the outbox rows up to `id` (inclusive) out: the network has them.
    pub async fn clear_outbox(&self, upto: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM ledger_outbox WHERE id <= ?1")
            .bind(upto)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces the whole ledger with `rows` (exactly as given: numbers, times, hashes), sets
    /// `state`, and keeps `meta` and `data` as the current snapshot, in one transaction:
    /// installing a snapshot from the coordinator.
    pub async fn install_raft_snapshot(
        &self,
        rows: &[LedgerRow],
        state: &[(&str, String)],
        meta: &str,
        data: &[u8],
    ) -> Result<(), StoreError> {
        self.write_tx(async |conn| {
            sqlx::query("DELETE FROM ledger")
                .execute(&mut *conn)
                .await?;
            for row in rows {
                sqlx::query(
                    "INSERT INTO ledger (seq, at, kind, body, prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .bind(to_sql(row.seq)?)
                .bind(&row.at)
                .bind(&row.kind)
                .bind(&row.body)
                .bind(&row.prev_hash)
                .bind(&row.hash)
                .execute(&mut *conn)
                .await?;
            }
            for (name, value) in state {
                set_state(conn, name, value).await?;
            }
            save_snapshot(conn, meta, data).await
        })
        .await
    }

    /// Keeps `meta` and `data` as the current snapshot.
    pub async fn save_raft_snapshot(&self, meta: &str, data: &[u8]) -> Result<(), StoreError> {
        self.write_tx(async |conn| save_snapshot(conn, meta, data).await)
            .await
    }

    /// The current snapshot: its meta (JSON) and data.
    pub async fn raft_snapshot(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT meta, data FROM raft_snapshot WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

async fn set_state(
    conn: &mut sqlx::SqliteConnection,
    name: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO raft_state (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn save_snapshot(
    conn: &mut sqlx::SqliteConnection,
    meta: &str,
    data: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO raft_snapshot (id, meta, data) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET meta = excluded.meta, data = excluded.data",
    )
    .bind(meta)
    .bind(data)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// The whole ledger and the values named `names`, read in one transaction, so they agree:
    /// what a snapshot of the state machine holds.
    pub async fn ledger_with_raft_state(
        &self,
        names: &[&str],
    ) -> Result<(Vec<LedgerRow>, Vec<Option<String>>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut values = Vec::with_capacity(names.len());
        for name in names {
            values.push(
                sqlx::query_scalar(STATE)
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?,
            );
        }
        let rows: Vec<SqlRow> =
            sqlx::query_as("SELECT seq, at, kind, body, prev_hash, hash FROM ledger ORDER BY seq")
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok((rows.into_iter().map(from_sql).collect(), values))
    }
}
