//! The `ledger_snapshots` table: the engine's state as of a ledger entry, so that a start replays
//! only what came after it. The store keeps the bytes and the entry they cover; what they mean
//! (and whether they may be used) is the engine's and the ledger's to decide.

use super::database::{Store, StoreError, to_sql};

/// A snapshot as stored. `body` is opaque here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// The last ledger entry the snapshot covers.
    pub seq: u64,
    /// That entry's hash.
    pub hash: String,
    pub taken_at: String,
    pub format: u32,
    pub body: Vec<u8>,
    pub body_sha256: String,
    /// The signed head of the covered entry (a JSON document).
    pub head: String,
}

/// A stored snapshot without its body: enough to pick one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub seq: u64,
    pub hash: String,
    pub taken_at: String,
    pub head: String,
}

/// A `ledger_snapshots` row as SQLite returns it.
type StoredSnapshot = (i64, String, String, i64, Vec<u8>, String, String);

impl Store {
    /// Saves `row` and forgets all but the newest `keep` snapshots, in one transaction: a crash
    /// leaves either the old set or the new one.
    pub async fn save_snapshot(&self, row: &SnapshotRow, keep: u32) -> Result<(), StoreError> {
        let seq = to_sql(row.seq)?;
        self.write_tx(async |conn| {
            sqlx::query(
                "INSERT OR REPLACE INTO ledger_snapshots
                     (seq, hash, taken_at, format, body, body_sha256, head)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(seq)
            .bind(&row.hash)
            .bind(&row.taken_at)
            .bind(row.format)
            .bind(&row.body)
            .bind(&row.body_sha256)
            .bind(&row.head)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "DELETE FROM ledger_snapshots WHERE seq NOT IN
                     (SELECT seq FROM ledger_snapshots ORDER BY seq DESC LIMIT ?1)",
            )
            .bind(keep)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
        .await
    }

    /// Removes every snapshot: the next start replays the ledger from its first entry.
    pub async fn forget_snapshots(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM ledger_snapshots")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every stored snapshot, newest first, without bodies.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotMeta>, StoreError> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT seq, hash, taken_at, head FROM ledger_snapshots ORDER BY seq DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, hash, taken_at, head)| SnapshotMeta {
                seq: u64::try_from(seq).unwrap_or(0),
                hash,
                taken_at,
                head,
            })
            .collect())
    }

    /// The snapshot covering entry `seq`, body included.
    pub async fn snapshot(&self, seq: u64) -> Result<Option<SnapshotRow>, StoreError> {
        let row: Option<StoredSnapshot> = sqlx::query_as(
            "SELECT seq, hash, taken_at, format, body, body_sha256, head
             FROM ledger_snapshots WHERE seq = ?1",
        )
        .bind(to_sql(seq)?)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(seq, hash, taken_at, format, body, body_sha256, head)| SnapshotRow {
                seq: u64::try_from(seq).unwrap_or(0),
                hash,
                taken_at,
                format: u32::try_from(format).unwrap_or(u32::MAX),
                body,
                body_sha256,
                head,
            },
        ))
    }

    /// The hash of ledger entry `seq`, if the ledger holds it.
    pub async fn ledger_hash(&self, seq: u64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT hash FROM ledger WHERE seq = ?1")
            .bind(to_sql(seq)?)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The kinds of the ledger entries after `seq`, each once: what was appended after a head.
    pub async fn ledger_kinds_after(&self, seq: u64) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT kind FROM ledger WHERE seq > ?1 ORDER BY kind")
                .bind(to_sql(seq)?)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64) -> SnapshotRow {
        SnapshotRow {
            seq,
            hash: format!("h{seq}"),
            taken_at: "2026-12-04T00:00:00Z".into(),
            format: 1,
            body: vec![seq as u8; 3],
            body_sha256: "x".into(),
            head: "{}".into(),
        }
    }

    #[tokio::test]
    async fn only_the_newest_snapshots_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        for seq in [10, 20, 30, 40] {
            store.save_snapshot(&row(seq), 2).await.unwrap();
        }
        let kept: Vec<u64> = store
            .snapshots()
            .await
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        assert_eq!(kept, [40, 30]);
        assert_eq!(store.snapshot(30).await.unwrap(), Some(row(30)));
        assert_eq!(store.snapshot(10).await.unwrap(), None);
    }
}
