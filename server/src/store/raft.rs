//! The `raft_log`, `raft_state` and `raft_snapshot` tables: a failover network member's Raft
//! log, its named state values, and its state machine's snapshot. What the values mean is the
//! failover room's (JSON text here); the store makes each change one transaction, and applies
//! the ledger rows a log entry carries in the same transaction as the applied log id, so a crash
//! never leaves a ledger that is ahead of, or behind, what the member says it applied.

use super::{
    database::{Store, StoreError, to_sql},
    ledger::{LedgerRow, NewLedgerRow, SqlRow, append_rows, from_sql},
};

/// The value of a named Raft state (`?1`).
const STATE: &str = "SELECT value FROM raft_state WHERE name = ?1";

impl Store {
    /// The value named `name`, if set.
    pub async fn raft_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(STATE)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets `name` to `value` (durably, as every write).
    pub async fn set_raft_state(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.write_tx(async |conn| set_state(conn, name, value).await)
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

    /// Appends `rows` to the ledger and sets `state` (name, value) in one transaction: applying
    /// log entries. The sequence numbers the rows got.
    pub async fn apply_raft(
        &self,
        rows: &[NewLedgerRow],
        state: &[(&str, String)],
    ) -> Result<Vec<u64>, StoreError> {
        self.write_tx(async |conn| {
            let seqs = append_rows(conn, rows).await?;
            for (name, value) in state {
                set_state(conn, name, value).await?;
            }
            Ok(seqs)
        })
        .await
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
