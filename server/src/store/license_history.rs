//! `usage_licenses`: every issue of a license the ledger saw installed, when and by whom, and
//! when it was removed or replaced. Folded from the ledger with the usage totals (its changes
//! commit with the usage cursor, in [`super::usage_write`]), so it is the same on every member of
//! a failover network and is rebuilt with the totals.

use sqlx::SqliteConnection;

use super::database::{Store, StoreError};

/// A change to the history, in ledger order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseChange {
    Installed {
        sha256: String,
        key: String,
        serial_number: u64,
        at: i64,
        by: String,
        /// The issue this one replaced (same key, older).
        replaced: Option<String>,
        file: Option<String>,
    },
    Removed {
        sha256: String,
        at: i64,
        by: String,
    },
}

/// One issue of a license, as the history has it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LicenseRecord {
    pub sha256: String,
    pub license_key: String,
    pub serial_number: i64,
    pub installed: i64,
    pub installed_by: String,
    pub removed: Option<i64>,
    pub removed_by: Option<String>,
    pub replaced_by: Option<String>,
    pub file: Option<String>,
}

/// Applies `changes` in order. Installing an issue again (after it was removed) clears its
/// removal; folding the same entries twice leaves the same rows.
pub(super) async fn write_license_changes(
    conn: &mut SqliteConnection,
    changes: &[LicenseChange],
) -> Result<(), StoreError> {
    for change in changes {
        match change {
            LicenseChange::Installed {
                sha256,
                key,
                serial_number,
                at,
                by,
                replaced,
                file,
            } => {
                sqlx::query(
                    "INSERT INTO usage_licenses (sha256, license_key, serial_number, installed,
                         installed_by, removed, removed_by, replaced_by, file)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, NULL, ?6)
                     ON CONFLICT (sha256) DO UPDATE SET installed = excluded.installed,
                         installed_by = excluded.installed_by, removed = NULL,
                         removed_by = NULL, replaced_by = NULL,
                         file = coalesce(excluded.file, file)",
                )
                .bind(sha256)
                .bind(key)
                .bind(i64::try_from(*serial_number).unwrap_or(i64::MAX))
                .bind(at)
                .bind(by)
                .bind(file)
                .execute(&mut *conn)
                .await?;
                if let Some(old) = replaced {
                    sqlx::query(
                        "UPDATE usage_licenses SET removed = ?2, removed_by = ?3, replaced_by = ?4
                         WHERE sha256 = ?1 AND removed IS NULL",
                    )
                    .bind(old)
                    .bind(at)
                    .bind(by)
                    .bind(sha256)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            LicenseChange::Removed { sha256, at, by } => {
                sqlx::query(
                    "UPDATE usage_licenses SET removed = ?2, removed_by = ?3 WHERE sha256 = ?1",
                )
                .bind(sha256)
                .bind(at)
                .bind(by)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

impl Store {
    /// The `most` issues installed last, the latest first.
    pub async fn license_history(&self, most: u32) -> Result<Vec<LicenseRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT sha256, license_key, serial_number, installed, installed_by, removed,
                 removed_by, replaced_by, file
             FROM usage_licenses ORDER BY installed DESC, rowid DESC LIMIT ?1",
        )
        .bind(most)
        .fetch_all(&self.pool)
        .await?)
    }
}
