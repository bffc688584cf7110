//! The `ledger_segments` table: which ledger entries were archived into which segment file (the
//! files themselves are the ledger room's). A segment's row is written before its entries leave
//! the `ledger` table, so an entry is always in one place or the other, or briefly in both.

use super::database::{Store, StoreError, now_rfc3339, to_sql};

/// One archived segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub first_seq: u64,
    pub last_seq: u64,
    /// The `prev_hash` of its first entry: the hash of the entry before it.
    pub first_prev_hash: String,
    /// The hash of its last entry.
    pub last_hash: String,
    /// The file's name in the archive directory.
    pub file: String,
    pub sha256: String,
}

impl Store {
    /// Every archived segment, oldest first.
    pub async fn ledger_segments(&self) -> Result<Vec<SegmentRow>, StoreError> {
        let rows: Vec<(i64, i64, String, String, String, String)> = sqlx::query_as(
            "SELECT first_seq, last_seq, first_prev_hash, last_hash, file, sha256
             FROM ledger_segments ORDER BY first_seq",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(first_seq, last_seq, first_prev_hash, last_hash, file, sha256)| SegmentRow {
                    first_seq: u64::try_from(first_seq).unwrap_or(0),
                    last_seq: u64::try_from(last_seq).unwrap_or(0),
                    first_prev_hash,
                    last_hash,
                    file,
                    sha256,
                },
            )
            .collect())
    }

    /// Records a segment whose file is written and synced.
    pub async fn add_ledger_segment(&self, segment: &SegmentRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ledger_segments
                 (first_seq, last_seq, first_prev_hash, last_hash, file, sha256, archived_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(to_sql(segment.first_seq)?)
        .bind(to_sql(segment.last_seq)?)
        .bind(&segment.first_prev_hash)
        .bind(&segment.last_hash)
        .bind(&segment.file)
        .bind(&segment.sha256)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes up to `limit` ledger rows up to entry `upto` (archived ones); how many it removed.
    /// A few thousand at a time, so the ledger writer never waits long for the write lock.
    pub async fn remove_archived_rows(&self, upto: u64, limit: u32) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM ledger WHERE seq IN
                 (SELECT seq FROM ledger WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
        )
        .bind(to_sql(upto)?)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
