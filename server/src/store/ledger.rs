//! The `ledger` table: append-only rows, each linked to the one before by a hash.
//!
//! The chain is the ledger's (`crate::ledger`): what a row's hash covers, and what the first row
//! links to. The store only applies it, because only the store knows the table's tail at the
//! moment of the insert: every row to append carries the [`Chain`] it is linked with, and the
//! store numbers and links the rows inside the transaction (or the one statement) that inserts
//! them.

use sqlx::{Sqlite, SqliteConnection, pool::PoolConnection};
use time::OffsetDateTime;

use super::database::{Store, StoreError, to_sql};
use crate::sys::timestamp::rfc3339;

/// How rows are linked: given by the ledger, applied by the store.
#[derive(Debug, Clone, Copy)]
pub struct Chain {
    /// The `prev_hash` of the first row.
    pub genesis: &'static str,
    /// A row's hash, from the previous row's hash and this row's stored text.
    pub hash: fn(prev_hash: &str, seq: u64, at: &str, body: &str) -> String,
}

/// A ledger row to append; the store numbers it and links it with `chain`.
#[derive(Debug, Clone)]
pub struct NewLedgerRow {
    pub at: OffsetDateTime,
    pub kind: &'static str,
    pub body: String,
    pub chain: Chain,
}

/// A ledger row as stored: text exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub seq: u64,
    pub at: String,
    pub kind: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A row as `(seq, at, kind, body, prev_hash, hash)`: how archive segments and Raft snapshots
/// carry rows, as JSON arrays.
pub type RowTuple = (u64, String, String, String, String, String);

impl From<RowTuple> for LedgerRow {
    fn from((seq, at, kind, body, prev_hash, hash): RowTuple) -> Self {
        Self {
            seq,
            at,
            kind,
            body,
            prev_hash,
            hash,
        }
    }
}

impl From<LedgerRow> for RowTuple {
    fn from(r: LedgerRow) -> Self {
        (r.seq, r.at, r.kind, r.body, r.prev_hash, r.hash)
    }
}

/// How far a checkpoint goes: see [`Store::checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    Passive,
    Truncate,
}

/// The last row's sequence number and hash; `None` while the table is empty.
type Tail = Option<(u64, String)>;

impl Store {
    /// Appends `rows` to the ledger in one transaction. Returns the sequence number of each row.
    pub async fn append_ledger(&self, rows: &[NewLedgerRow]) -> Result<Vec<u64>, StoreError> {
        self.write_tx(async |conn| append_rows(conn, rows).await)
            .await
    }

    /// A dedicated connection for the ledger writer. It never checkpoints the WAL itself: a
    /// checkpoint copies pages into the database file and fsyncs it, and doing that inside a
    /// group commit would make every request of that batch wait. [`Store::checkpoint`] does it
    /// on the side.
    pub async fn ledger_appender(&self) -> Result<LedgerAppender, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut *conn)
            .await?;
        Ok(LedgerAppender { conn, tail: None })
    }

    /// Copies what the WAL holds into the database file. `Passive` goes as far as readers and the
    /// writer allow without waiting for anyone; `Truncate` waits for them (the ledger writer's
    /// next commit waits in turn), copies everything and empties the WAL file, so the WAL cannot
    /// grow without bound under a load that never lets a passive checkpoint finish.
    pub async fn checkpoint(&self, mode: Checkpoint) -> Result<(), StoreError> {
        let sql = match mode {
            Checkpoint::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            Checkpoint::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }

    /// The size of the WAL file now (0 when there is none).
    pub fn wal_bytes(&self) -> u64 {
        let mut wal = self.path().as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    /// The last ledger entry's sequence number and hash; `None` while the ledger is empty.
    pub async fn ledger_tail(&self) -> Result<Option<(u64, String)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        ledger_tail(&mut conn).await
    }

    /// The newest ledger row of `kind` in the store (not the archive): its time and body.
    pub async fn last_ledger_row(
        &self,
        kind: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT at, body FROM ledger WHERE kind = ?1 ORDER BY seq DESC LIMIT 1")
                .bind(kind)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Up to `limit` ledger rows after `after`, in order: for verifying and replaying the ledger
    /// without holding it all in memory.
    pub async fn ledger_rows(&self, after: u64, limit: u32) -> Result<Vec<LedgerRow>, StoreError> {
        let rows: Vec<SqlRow> = sqlx::query_as(
            "SELECT seq, at, kind, body, prev_hash, hash FROM ledger
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(to_sql(after)?)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(from_sql).collect())
    }
}

/// A ledger row as SQLite returns `seq, at, kind, body, prev_hash, hash`.
pub(super) type SqlRow = (i64, String, String, String, String, String);

pub(super) fn from_sql((seq, at, kind, body, prev_hash, hash): SqlRow) -> LedgerRow {
    LedgerRow {
        seq: u64::try_from(seq).unwrap_or(0),
        at,
        kind,
        body,
        prev_hash,
        hash,
    }
}

/// The last ledger row: its sequence number and hash.
pub(super) async fn ledger_tail(conn: &mut SqliteConnection) -> Result<Tail, StoreError> {
    let tail: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    tail.map(|(seq, hash)| {
        Ok((
            u64::try_from(seq).map_err(|_| StoreError::OutOfRange)?,
            hash,
        ))
    })
    .transpose()
}

/// Rows linked onto `tail`, ready for [`INSERT_AFTER`]: the JSON array of rows, their sequence
/// numbers, and the new tail.
fn link_rows(tail: &Tail, rows: &[NewLedgerRow]) -> Result<(String, Vec<u64>, Tail), StoreError> {
    let Some(first) = rows.first() else {
        return Ok((String::from("[]"), Vec::new(), tail.clone()));
    };
    let (mut seq, mut prev) = tail
        .clone()
        .unwrap_or_else(|| (0, first.chain.genesis.to_owned()));
    let mut seqs = Vec::with_capacity(rows.len());
    let mut batch = Vec::with_capacity(rows.len());
    for row in rows {
        seq += 1;
        let at = rfc3339(row.at);
        let hash = (row.chain.hash)(&prev, seq, &at, &row.body);
        batch.push(serde_json::json!([
            to_sql(seq)?,
            at,
            row.kind,
            row.body,
            prev,
            hash
        ]));
        seqs.push(seq);
        prev = hash;
    }
    Ok((
        serde_json::Value::Array(batch).to_string(),
        seqs,
        Some((seq, prev)),
    ))
}

fn tail_seq(tail: &Tail) -> Result<i64, StoreError> {
    to_sql(tail.as_ref().map_or(0, |(seq, _)| *seq))
}

/// Inserts a JSON array of linked rows (`?1`), but only if the ledger still ends at sequence
/// number `?2`. One statement, so one implicit transaction and one fsync for the whole batch
/// whatever its size; and if another process appended in the meantime, nothing is inserted and
/// the caller links onto the new tail.
const INSERT_AFTER: &str = "INSERT INTO ledger (seq, at, kind, body, prev_hash, hash)
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
            json_extract(value, '$[2]'), json_extract(value, '$[3]'),
            json_extract(value, '$[4]'), json_extract(value, '$[5]')
     FROM json_each(?1)
     WHERE (SELECT COALESCE(MAX(seq), 0) FROM ledger) = ?2";

/// Appends `rows` inside the caller's write transaction (which already holds the write lock, so
/// the tail it reads cannot move).
pub(super) async fn append_rows(
    conn: &mut SqliteConnection,
    rows: &[NewLedgerRow],
) -> Result<Vec<u64>, StoreError> {
    let tail = ledger_tail(conn).await?;
    let (json, seqs, _) = link_rows(&tail, rows)?;
    sqlx::query(INSERT_AFTER)
        .bind(json)
        .bind(tail_seq(&tail)?)
        .execute(&mut *conn)
        .await?;
    Ok(seqs)
}

/// Appends `row` in the caller's write transaction: the ledger row of a change to another table.
/// On a member of a failover network, whose ledger only the replicated log appends to, the row
/// goes to the outbox instead, for the network to record (see `Store::outbox`).
pub(super) async fn append_row(
    conn: &mut SqliteConnection,
    row: &NewLedgerRow,
) -> Result<(), StoreError> {
    if super::raft::is_member(conn).await? {
        return super::raft::to_outbox(conn, row).await;
    }
    append_rows(conn, std::slice::from_ref(row)).await.map(drop)
}

/// The ledger writer's own connection, and the tail it last wrote: a batch costs one statement
/// (no transaction of its own, no tail query) unless another process appended meanwhile.
#[derive(Debug)]
pub struct LedgerAppender {
    conn: PoolConnection<Sqlite>,
    tail: Option<Tail>,
}

impl LedgerAppender {
    /// Closes the connection instead of handing it back to the pool: after a failed write, it is
    /// not to be trusted again.
    pub async fn discard(self) {
        let _ = self.conn.close().await;
    }

    pub async fn append(&mut self, rows: &[NewLedgerRow]) -> Result<Vec<u64>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        loop {
            let tail = match self.tail.take() {
                Some(tail) => tail,
                None => ledger_tail(&mut self.conn).await?,
            };
            let (json, seqs, new_tail) = link_rows(&tail, rows)?;
            let inserted = sqlx::query(INSERT_AFTER)
                .bind(json)
                .bind(tail_seq(&tail)?)
                .execute(&mut *self.conn)
                .await?
                .rows_affected();
            if inserted == rows.len() as u64 {
                self.tail = Some(new_tail);
                return Ok(seqs);
            }
            if inserted != 0 {
                return Err(StoreError::Query(sqlx::Error::Protocol(format!(
                    "a ledger batch of {} rows inserted {inserted}",
                    rows.len()
                ))));
            }
            // Someone else appended (`license install` from the CLI): link onto their tail.
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A chain for the store's own tests, which need rows but not the ledger's hash.
    pub(in crate::store) fn row() -> NewLedgerRow {
        NewLedgerRow {
            at: OffsetDateTime::now_utc(),
            kind: "test",
            body: "{}".into(),
            chain: Chain {
                genesis: "0",
                hash: |prev, seq, _, _| format!("{prev}.{seq}"),
            },
        }
    }

    #[tokio::test]
    async fn rows_are_numbered_and_linked_with_their_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        assert_eq!(store.append_ledger(&[row(), row()]).await.unwrap(), [1, 2]);
        let mut appender = store.ledger_appender().await.unwrap();
        assert_eq!(appender.append(&[row()]).await.unwrap(), [3]);
        // Another connection appends; the appender links onto its row.
        store.append_ledger(&[row()]).await.unwrap();
        assert_eq!(appender.append(&[row()]).await.unwrap(), [5]);
        let rows = store.ledger_rows(0, 10).await.unwrap();
        let links: Vec<_> = rows
            .iter()
            .map(|r| (r.prev_hash.as_str(), r.hash.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                ("0", "0.1"),
                ("0.1", "0.1.2"),
                ("0.1.2", "0.1.2.3"),
                ("0.1.2.3", "0.1.2.3.4"),
                ("0.1.2.3.4", "0.1.2.3.4.5")
            ]
        );
    }
}
