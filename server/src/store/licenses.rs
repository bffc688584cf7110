//! The `license_installs` and `cartridge_pools` tables: in which order licenses were installed (the
//! files themselves are in the licenses directory), and which pool each cartridge is in.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::{
    database::{Store, StoreError, now_rfc3339, to_sql},
    ledger::{NewLedgerRow, append_row},
};
use crate::sys::timestamp::{parse_rfc3339, rfc3339};

impl Store {
    /// Records that the license `key` with content `sha256` was installed at `installed`, making it
    /// the most recent install, and appends `ledger` in the same transaction (none for an install
    /// the failover network's log replicated, which is in the ledger already). Re-recording the
    /// same content keeps its original place.
    pub async fn record_install(
        &self,
        key: &str,
        sha256: &str,
        installed: OffsetDateTime,
        ledger: impl Into<Option<NewLedgerRow>>,
    ) -> Result<(), StoreError> {
        let ledger = ledger.into();
        self.write_tx(async |conn| {
            sqlx::query(
                "INSERT INTO license_installs (license_key, sha256, installed, seq)
                 VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM license_installs))
                 ON CONFLICT (license_key) DO UPDATE
                    SET sha256 = excluded.sha256, installed = excluded.installed, seq = excluded.seq
                    WHERE sha256 <> excluded.sha256",
            )
            .bind(key)
            .bind(sha256)
            .bind(rfc3339(installed))
            .execute(&mut *conn)
            .await?;
            if let Some(ledger) = &ledger {
                append_row(conn, ledger).await?;
            }
            Ok(())
        })
        .await
    }

    /// Forgets the install of `key` (a later install of it counts as the newest), and appends
    /// `ledger` (if any) in the same transaction.
    pub async fn record_removal(
        &self,
        key: &str,
        ledger: impl Into<Option<NewLedgerRow>>,
    ) -> Result<(), StoreError> {
        let ledger = ledger.into();
        self.write_tx(async |conn| {
            sqlx::query("DELETE FROM license_installs WHERE license_key = ?1")
                .bind(key)
                .execute(&mut *conn)
                .await?;
            if let Some(ledger) = &ledger {
                append_row(conn, ledger).await?;
            }
            Ok(())
        })
        .await
    }

    /// Every recorded install, oldest first.
    pub async fn installs(&self) -> Result<Vec<Install>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT license_key, sha256, installed FROM license_installs ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, sha256, installed)| Install {
                key,
                sha256,
                installed: parse_rfc3339(&installed).ok(),
            })
            .collect())
    }

    /// Puts the cartridge `serial_number` into `pool`, or back into the default pool (`None`),
    /// and appends `ledger` (if any) in the same transaction.
    pub async fn assign_pool(
        &self,
        serial_number: u64,
        pool: Option<&str>,
        ledger: impl Into<Option<NewLedgerRow>>,
    ) -> Result<(), StoreError> {
        let ledger = ledger.into();
        let serial = to_sql(serial_number)?;
        self.write_tx(async |conn| {
            match pool {
                Some(pool) => {
                    sqlx::query(
                        "INSERT INTO cartridge_pools (serial_number, pool, assigned)
                         VALUES (?1, ?2, ?3)
                         ON CONFLICT (serial_number) DO UPDATE
                            SET pool = excluded.pool, assigned = excluded.assigned",
                    )
                    .bind(serial)
                    .bind(pool)
                    .bind(now_rfc3339())
                    .execute(&mut *conn)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM cartridge_pools WHERE serial_number = ?1")
                        .bind(serial)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            if let Some(ledger) = &ledger {
                append_row(conn, ledger).await?;
            }
            Ok(())
        })
        .await
    }

    /// Serial number → pool, for every cartridge that is not in the default pool.
    pub async fn pools(&self) -> Result<HashMap<u64, String>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT serial_number, pool FROM cartridge_pools")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(serial, pool)| Some((u64::try_from(serial).ok()?, pool)))
            .collect())
    }
}

/// A row of `license_installs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub key: String,
    pub sha256: String,
    /// `None` if the stored time does not parse (a damaged row orders first, it does not fail).
    pub installed: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ledger::tests::row;

    #[tokio::test]
    async fn installs_keep_their_order_and_a_reinstall_of_the_same_file_keeps_its_place() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        let t = OffsetDateTime::now_utc();
        store.record_install("A", "aaa", t, row()).await.unwrap();
        store.record_install("B", "bbb", t, row()).await.unwrap();
        store.record_install("A", "aaa", t, row()).await.unwrap();
        let keys = |installs: Vec<Install>| installs.into_iter().map(|i| i.key).collect::<Vec<_>>();
        assert_eq!(keys(store.installs().await.unwrap()), ["A", "B"]);
        store.record_install("A", "aa2", t, row()).await.unwrap();
        assert_eq!(
            store.ledger_rows(0, 10).await.unwrap().len(),
            4,
            "one ledger row each"
        );
        assert_eq!(keys(store.installs().await.unwrap()), ["B", "A"]);
        store.record_removal("B", row()).await.unwrap();
        assert_eq!(keys(store.installs().await.unwrap()), ["A"]);
        store.record_install("B", "bbb", t, row()).await.unwrap();
        assert_eq!(
            keys(store.installs().await.unwrap()),
            ["A", "B"],
            "installed again after a removal: the newest"
        );
    }

    #[tokio::test]
    async fn pool_assignments_are_kept_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        store.assign_pool(7, Some("farm"), row()).await.unwrap();
        store.assign_pool(8, Some("farm"), row()).await.unwrap();
        store.assign_pool(7, Some("night"), row()).await.unwrap();
        store.assign_pool(8, None, row()).await.unwrap();
        let pools = store.pools().await.unwrap();
        assert_eq!(pools, HashMap::from([(7, "night".to_owned())]));
    }
}
