//! The `server_identity` table: this server's id, one row written at first start, the machine it
//! is bound to, and where it came from when its data directory moved to another machine.

use super::{
    database::{Store, StoreError, now_rfc3339},
    ledger::{NewLedgerRow, append_row},
};

/// The row of `server_identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRow {
    pub server_id: String,
    /// The host fingerprint it is bound to; `None` before the first start that binds it.
    pub host: Option<String>,
    pub previous_server_id: Option<String>,
    /// RFC 3339.
    pub moved_at: Option<String>,
}

impl Store {
    /// The stored server id; `candidate` is stored first if there is none yet (the first start).
    /// Safe against two processes doing it at once: the insert is a no-op when a row exists, and
    /// both then read the one row that won.
    pub async fn server_id_or_insert(&self, candidate: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO server_identity (id, server_id, created) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(candidate)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT server_id FROM server_identity WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The identity row (after [`Store::server_id_or_insert`], there is one).
    pub async fn identity(&self) -> Result<IdentityRow, StoreError> {
        let (server_id, host, previous_server_id, moved_at) = sqlx::query_as(
            "SELECT server_id, host, previous_server_id, moved_at FROM server_identity WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(IdentityRow {
            server_id,
            host,
            previous_server_id,
            moved_at,
        })
    }

    /// Binds an unbound identity to `host`; `false` if it was bound already (by another process
    /// at the same moment, say).
    pub async fn bind_host(&self, host: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE server_identity SET host = ?1 WHERE id = 1 AND host IS NULL")
                .bind(host)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The data directory is on another machine (`host`): the server gets `new_id`, and
    /// remembers `old_id` and the time. Only if the id is still `old_id` (two processes that
    /// notice at once make one move, not two); `false` otherwise. `ledger` is appended in the
    /// same transaction.
    pub async fn record_move(
        &self,
        old_id: &str,
        new_id: &str,
        host: &str,
        moved_at: &str,
        ledger: NewLedgerRow,
    ) -> Result<bool, StoreError> {
        self.write_tx(async |conn| {
            let done = sqlx::query(
                "UPDATE server_identity
                    SET server_id = ?2, host = ?3, previous_server_id = ?1, moved_at = ?4
                  WHERE id = 1 AND server_id = ?1",
            )
            .bind(old_id)
            .bind(new_id)
            .bind(host)
            .bind(moved_at)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 1 {
                append_row(conn, &ledger).await?;
            }
            Ok(done.rows_affected() == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_id_is_kept_across_restarts() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store.db");
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.server_id_or_insert("AB").await.unwrap(), "AB");
        assert_eq!(store.server_id_or_insert("CD").await.unwrap(), "AB");
        store.close().await;
        let reopened = Store::open(&path).await.unwrap();
        assert_eq!(reopened.server_id_or_insert("EF").await.unwrap(), "AB");
    }
}
