//! The `licensed_users` table: every (realm, principal) that authenticated, counted against the
//! active license's user limit.

use time::OffsetDateTime;

use super::{
    database::{Store, StoreError},
    ledger::{NewLedgerRow, append_row},
};
use crate::sys::timestamp::rfc3339;

impl Store {
    /// Records that `(realm, principal)` authenticated at `at`. A new licensed user is admitted
    /// only while there are fewer than `limit`; the check and the insert are one transaction, so
    /// two logins at once cannot both take the last place.
    pub async fn admit_licensed_user(
        &self,
        realm: &str,
        principal: &str,
        at: OffsetDateTime,
        limit: Option<u32>,
    ) -> Result<Admission, StoreError> {
        // Milliseconds, as the admin API shows `lastAccessDate` (`2013-03-12T20:04:30.001Z`).
        let at = at.replace_millisecond(at.millisecond()).unwrap_or(at);
        self.write_tx(async |conn| {
            let known = sqlx::query(
                "UPDATE licensed_users SET last_access = ?3 WHERE realm = ?1 AND principal = ?2",
            )
            .bind(realm)
            .bind(principal)
            .bind(rfc3339(at))
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1;
            if known {
                return Ok(Admission::Known);
            }
            if let Some(limit) = limit {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM licensed_users")
                    .fetch_one(&mut *conn)
                    .await?;
                if count >= i64::from(limit) {
                    return Ok(Admission::Refused { limit });
                }
            }
            sqlx::query(
                "INSERT INTO licensed_users (realm, principal, last_access) VALUES (?1, ?2, ?3)",
            )
            .bind(realm)
            .bind(principal)
            .bind(rfc3339(at))
            .execute(&mut *conn)
            .await?;
            Ok(Admission::Added)
        })
        .await
    }

    /// Every licensed user, most recent access first.
    pub async fn licensed_users(&self) -> Result<Vec<LicensedUserRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT realm, principal, last_access FROM licensed_users
             ORDER BY last_access DESC, realm, principal",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Clears licensed users: all of them (`who` = None) or one. Returns how many were removed
    /// and how many remain.
    pub async fn clear_licensed_users(
        &self,
        who: Option<(&str, &str)>,
        ledger: NewLedgerRow,
    ) -> Result<(u64, u64), StoreError> {
        self.write_tx(async |conn| {
            let removed = match who {
                Some((realm, principal)) => {
                    sqlx::query("DELETE FROM licensed_users WHERE realm = ?1 AND principal = ?2")
                        .bind(realm)
                        .bind(principal)
                        .execute(&mut *conn)
                        .await?
                }
                None => {
                    sqlx::query("DELETE FROM licensed_users")
                        .execute(&mut *conn)
                        .await?
                }
            }
            .rows_affected();
            if removed > 0 {
                append_row(conn, &ledger).await?;
            }
            let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM licensed_users")
                .fetch_one(&mut *conn)
                .await?;
            Ok((removed, u64::try_from(remaining).unwrap_or(0)))
        })
        .await
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LicensedUserRow {
    pub realm: String,
    pub principal: String,
    pub last_access: String,
}

/// What [`Store::admit_licensed_user`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Known already; its last access is updated.
    Known,
    Added,
    /// New, and the license's user limit is reached.
    Refused {
        limit: u32,
    },
}
