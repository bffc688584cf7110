//! The `admin_users` and `admin_tokens` tables: administrators of the realm `local` (argon2id
//! hashes, never passwords) and their logged-in tokens (by hash, never the token).

use sqlx::{Sqlite, query::Query, sqlite::SqliteArguments};
use time::OffsetDateTime;

use super::{
    database::{Store, StoreError, now_rfc3339},
    ledger::{NewLedgerRow, append_row},
};
use crate::sys::timestamp::{parse_rfc3339, rfc3339};

impl Store {
    /// The administrator `principal` of the realm `local`.
    pub async fn admin_user(&self, principal: &str) -> Result<Option<AdminUserRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT principal, password_hash, role, scope FROM admin_users WHERE principal = ?1",
        )
        .bind(principal)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn admin_users(&self) -> Result<Vec<AdminUserRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT principal, password_hash, role, scope FROM admin_users ORDER BY principal",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Adds an administrator; `Ok(false)` if the principal exists already.
    pub async fn add_admin_user(
        &self,
        user: &AdminUserRow,
        ledger: NewLedgerRow,
    ) -> Result<bool, StoreError> {
        self.add_admin(user, ledger, false).await
    }

    /// Adds the first administrator if there is none at all; `Ok(false)` if there is one.
    pub async fn add_first_admin_user(
        &self,
        user: &AdminUserRow,
        ledger: NewLedgerRow,
    ) -> Result<bool, StoreError> {
        self.add_admin(user, ledger, true).await
    }

    /// `only_first`: only if there is no administrator at all. The count and the insert are one
    /// transaction, so two first starts at once cannot both add one.
    async fn add_admin(
        &self,
        user: &AdminUserRow,
        ledger: NewLedgerRow,
        only_first: bool,
    ) -> Result<bool, StoreError> {
        self.write_tx(async |conn| {
            if only_first {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_users")
                    .fetch_one(&mut *conn)
                    .await?;
                if count > 0 {
                    return Ok(false);
                }
            }
            let added = sqlx::query(
                "INSERT INTO admin_users (principal, password_hash, role, scope, created)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (principal) DO NOTHING",
            )
            .bind(&user.principal)
            .bind(&user.password_hash)
            .bind(&user.role)
            .bind(&user.scope)
            .bind(now_rfc3339())
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1;
            if added {
                append_row(conn, &ledger).await?;
            }
            Ok(added)
        })
        .await
    }

    /// Sets a new password hash; `Ok(false)` if there is no such administrator. Their tokens end:
    /// a password change is how an administrator throws out whoever else was logged in.
    pub async fn set_admin_password(
        &self,
        principal: &str,
        password_hash: &str,
        ledger: NewLedgerRow,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query("UPDATE admin_users SET password_hash = ?2 WHERE principal = ?1")
            .bind(principal)
            .bind(password_hash);
        self.change_admin(principal, change, ledger).await
    }

    /// Removes an administrator and ends their tokens; `Ok(false)` if there was none.
    pub async fn remove_admin_user(
        &self,
        principal: &str,
        ledger: NewLedgerRow,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query("DELETE FROM admin_users WHERE principal = ?1").bind(principal);
        self.change_admin(principal, change, ledger).await
    }

    /// Runs `change` on the administrator `principal`; if it found them, their logged-in tokens
    /// end and `ledger` records it, in the same transaction.
    async fn change_admin<'q>(
        &self,
        principal: &str,
        change: Query<'q, Sqlite, SqliteArguments<'q>>,
        ledger: NewLedgerRow,
    ) -> Result<bool, StoreError> {
        self.write_tx(async |conn| {
            let changed = change.execute(&mut *conn).await?.rows_affected() == 1;
            if changed {
                sqlx::query("DELETE FROM admin_tokens WHERE principal = ?1 AND realm = 'local'")
                    .bind(principal)
                    .execute(&mut *conn)
                    .await?;
                append_row(conn, &ledger).await?;
            }
            Ok(changed)
        })
        .await
    }

    pub async fn insert_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_tokens (token_hash, principal, realm, created, last_used)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&token.token_hash)
        .bind(&token.principal)
        .bind(&token.realm)
        .bind(rfc3339(token.created))
        .bind(rfc3339(token.last_used))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row: Option<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT token_hash, principal, realm, created, last_used FROM admin_tokens
             WHERE token_hash = ?1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.and_then(|(token_hash, principal, realm, created, last_used)| {
                Some(TokenRow {
                    token_hash,
                    principal,
                    realm,
                    created: parse_rfc3339(&created).ok()?,
                    last_used: parse_rfc3339(&last_used).ok()?,
                })
            }),
        )
    }

    pub async fn touch_token(
        &self,
        token_hash: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE admin_tokens SET last_used = ?2 WHERE token_hash = ?1")
            .bind(token_hash)
            .bind(rfc3339(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a token; `Ok(false)` if it did not exist.
    pub async fn delete_token(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM admin_tokens WHERE token_hash = ?1")
                .bind(token_hash)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }
}

/// An administrator as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminUserRow {
    pub principal: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `admin` or `viewer`.
    pub role: String,
    pub scope: Option<String>,
}

/// A logged-in session token, by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_hash: String,
    pub principal: String,
    pub realm: String,
    pub created: OffsetDateTime,
    pub last_used: OffsetDateTime,
}
