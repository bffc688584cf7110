//! The `server_identity` table: this server's id, one row written at first start and never
//! changed (licenses are bound to it).

use super::database::{Store, StoreError, now_rfc3339};

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
