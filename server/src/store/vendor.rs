//! The vendor licensing service's own database (`license-vendor serve --data-dir`): its login tokens and
//! the activations it has made. A database of its own, opened like the license server's, and
//! here because the store is the only room with SQL.

use std::path::Path;

use sqlx::{SqlitePool, migrate::Migrator};
use time::OffsetDateTime;

use super::database::{StoreError, connect, write_tx};
use crate::sys::timestamp::rfc3339;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations-vendor");

#[derive(Debug, Clone)]
pub struct VendorStore {
    pub(super) pool: SqlitePool,
}

/// What an activation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// This server had it already: the file issued then.
    Existing(String),
    New(String),
    /// Activated on as many servers as allowed.
    LimitReached {
        max: u32,
    },
}

impl VendorStore {
    /// The database's file name in the vendor service's data directory.
    pub const FILE: &str = "vendor.db";

    /// The failover network that license `key` is activated for whose members a majority of
    /// `members` (server ids) were: the network these members' network grew out of, whose
    /// activation a new one takes over.
    pub async fn network_predecessor(
        &self,
        key: &str,
        members: &[&str],
    ) -> Result<Option<String>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.server_id, n.server_id FROM activations a
             JOIN network_members n ON n.network_id = a.server_id
             WHERE a.license_key = ?1",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        let mut networks: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for (network, member) in rows {
            let counts = networks.entry(network).or_default();
            counts.0 += 1;
            if members.contains(&member.as_str()) {
                counts.1 += 1;
            }
        }
        Ok(networks
            .into_iter()
            .find(|(_, (all, kept))| *kept * 2 > *all)
            .map(|(network, _)| network))
    }

    /// Records the members (server id, public key) of the failover network `network_id`.
    pub async fn record_network(
        &self,
        network_id: &str,
        members: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        write_tx(&self.pool, async |conn| {
            for (server_id, public_key) in members {
                sqlx::query(
                    "INSERT INTO network_members (network_id, server_id, public_key)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (network_id, server_id) DO UPDATE SET public_key = excluded.public_key",
                )
                .bind(network_id)
                .bind(server_id)
                .bind(public_key)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        })
        .await
    }

    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            pool: connect(path, &MIGRATOR).await?,
        })
    }

    pub async fn insert_token(
        &self,
        token_hash: &str,
        principal: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO vendor_tokens (token_hash, principal, created, last_used)
             VALUES (?1, ?2, ?3, ?3)",
        )
        .bind(token_hash)
        .bind(principal)
        .bind(rfc3339(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The principal of a token that was used at `not_before` or later; older ones are deleted.
    /// Each use refreshes it.
    pub async fn use_token(
        &self,
        token_hash: &str,
        not_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query("DELETE FROM vendor_tokens WHERE last_used < ?1")
            .bind(rfc3339(not_before))
            .execute(&self.pool)
            .await?;
        let principal: Option<String> = sqlx::query_scalar(
            "UPDATE vendor_tokens SET last_used = ?2 WHERE token_hash = ?1 RETURNING principal",
        )
        .bind(token_hash)
        .bind(rfc3339(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(principal)
    }

    pub async fn delete_token(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM vendor_tokens WHERE token_hash = ?1")
                .bind(token_hash)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// (server_id, activated) of every activation of `key`, oldest first.
    pub async fn activations(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT server_id, activated FROM activations WHERE license_key = ?1
             ORDER BY activated, server_id",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Activates `key` on `server_id` with `file` (already signed), unless this server has it
    /// already or `max` servers do. One transaction: two servers activating the last place at
    /// once cannot both get it.
    pub async fn activate(
        &self,
        key: &str,
        server_id: &str,
        server_public_key: &str,
        max: u32,
        file: &str,
    ) -> Result<Activation, StoreError> {
        write_tx(&self.pool, async |conn| {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT license_file FROM activations WHERE license_key = ?1 AND server_id = ?2",
            )
            .bind(key)
            .bind(server_id)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(existing) = existing {
                return Ok(Activation::Existing(existing));
            }
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM activations WHERE license_key = ?1")
                    .bind(key)
                    .fetch_one(&mut *conn)
                    .await?;
            if count >= i64::from(max) {
                return Ok(Activation::LimitReached { max });
            }
            sqlx::query(
                "INSERT INTO activations
                    (license_key, server_id, license_file, activated, server_public_key)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(key)
            .bind(server_id)
            .bind(file)
            .bind(rfc3339(OffsetDateTime::now_utc()))
            .bind(server_public_key)
            .execute(&mut *conn)
            .await?;
            Ok(Activation::New(file.to_owned()))
        })
        .await
    }

    /// The public key recorded with the activation of `key` on `server_id`: `None` if there is no
    /// such activation, `Some(None)` if it was made before keys were kept.
    pub async fn activation_key(
        &self,
        key: &str,
        server_id: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT server_public_key FROM activations WHERE license_key = ?1 AND server_id = ?2",
        )
        .bind(key)
        .bind(server_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Removes the activation of `key` on `server_id`; `false` if there was none.
    pub async fn deactivate(&self, key: &str, server_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM activations WHERE license_key = ?1 AND server_id = ?2")
            .bind(key)
            .bind(server_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
