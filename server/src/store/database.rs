//! The SQLite database under the store: opening it (WAL, `synchronous = FULL`, migrations),
//! write transactions, and the store's one error type.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use sqlx::{
    SqliteConnection, SqlitePool,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use thiserror::Error;
use time::OffsetDateTime;

use crate::sys::{
    data_dir::{create_private_file, make_private},
    timestamp::rfc3339,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error(
        "cannot update the store {path} to this version of license-server: {source} \
         (was it written by a newer version?)"
    )]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("a number is too large for the store")]
    OutOfRange,
}

impl StoreError {
    /// What went wrong, in words fit for anyone to read (a readiness check is public): SQLite's
    /// own message ("database or disk is full", "disk I/O error"), never a path or a query.
    pub fn public_reason(&self) -> String {
        let of_sqlx = |error: &sqlx::Error| match error {
            sqlx::Error::Database(e) => e.message().to_owned(),
            sqlx::Error::Io(e) => e.kind().to_string(),
            _ => "the store cannot be reached".to_owned(),
        };
        match self {
            Self::Open { source, .. } | Self::Query(source) => of_sqlx(source),
            Self::Migrate { .. } => "the store cannot be updated to this version".to_owned(),
            Self::OutOfRange => "a number is too large for the store".to_owned(),
        }
    }
}

/// A handle on the store; cheap to clone (it is a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) pool: SqlitePool,
    path: Arc<PathBuf>,
    /// One connection with `synchronous = NORMAL`, opened on first use, for [`Sync::Deferred`]
    /// writes.
    deferred: Arc<tokio::sync::OnceCell<SqlitePool>>,
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            pool: connect(path, &MIGRATOR).await?,
            path: Arc::new(path.to_owned()),
            deferred: Arc::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory the database file is in: the data directory, where the files that go
    /// with the store (archive segments, the list of reported entries) live.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }

    /// The same database on new connections, none of which has seen what an earlier failure
    /// left in its cache: the ledger writer's fresh start after a failed write.
    pub async fn reopen(&self) -> Result<Self, StoreError> {
        Self::open(&self.path).await
    }

    /// Rewrites the one row of `write_probe` in a transaction of its own, committed and synced
    /// like a ledger batch: `Ok` when the store takes writes (again).
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO write_probe (id, at) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn write_tx<T>(
        &self,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        write_tx(&self.pool, work).await
    }

    /// Writes a consistent copy of the whole database to `path` (which must not exist), as of
    /// one instant, while others go on reading and writing: SQLite's `VACUUM INTO`, a read
    /// transaction that never blocks the writer.
    pub async fn copy_into(&self, path: &str) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO ?1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Waits for running queries and closes the database cleanly (the WAL is checkpointed).
    pub async fn close(&self) {
        if let Some(deferred) = self.deferred.get() {
            deferred.close().await;
        }
        self.pool.close().await;
    }
}

/// How durable a write transaction is when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// On disk (`synchronous = FULL`): every write but those below.
    Full,
    /// Atomic, and on disk with the next full write (`synchronous = NORMAL` in WAL mode): for
    /// what can be rebuilt after a crash from something that was written in full, such as a
    /// failover network member's ledger, which its Raft log rebuilds.
    Deferred,
}

impl Store {
    /// [`Store::write_tx`] with `sync`.
    pub(super) async fn write_tx_with<T>(
        &self,
        sync: Sync,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if sync == Sync::Full {
            return self.write_tx(work).await;
        }
        let pool = self
            .deferred
            .get_or_try_init(|| async {
                let options = SqliteConnectOptions::new()
                    .filename(self.path.as_ref())
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
            })
            .await?;
        write_tx(pool, work).await
    }
}

/// Runs `work` in a write transaction. IMMEDIATE: the write lock is taken before the first
/// read, so what `work` reads (the ledger's tail) cannot change before it writes.
pub(super) async fn write_tx<T>(
    pool: &SqlitePool,
    work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut conn = pool.acquire().await?;
    in_tx(&mut conn, work).await
}

/// Runs `work` in a write transaction on `conn` (see [`write_tx`]).
async fn in_tx<T>(
    conn: &mut SqliteConnection,
    work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    match work(conn).await {
        Ok(value) => {
            if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(e.into());
            }
            Ok(value)
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}

/// Opens (creating if needed) an SQLite database in WAL mode with `synchronous = FULL` and brings
/// its schema up to date with `migrator`. The vendor service's store opens the same way.
pub(super) async fn connect(path: &Path, migrator: &Migrator) -> Result<SqlitePool, StoreError> {
    let shown = path.display().to_string();
    // The store holds password hashes and the ledger: its owner's only. SQLite gives the WAL and
    // shared-memory files the mode of the database file, so creating that one 0600 is enough;
    // stores made by earlier versions (0644) are tightened here.
    let private = |path: &Path| -> std::io::Result<()> {
        create_private_file(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            make_private(Path::new(&name))?;
        }
        Ok(())
    };
    private(path).map_err(|e| StoreError::Open {
        path: shown.clone(),
        source: sqlx::Error::Io(e),
    })?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        // Another process (`license-server server-id` while the server runs) may hold the
        // write lock for a moment; wait for it instead of failing.
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            path: shown.clone(),
            source,
        })?;
    migrator
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            path: shown,
            source,
        })?;
    Ok(pool)
}

pub(super) fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// A sequence number or serial as SQLite stores it (a signed 64-bit integer).
pub(super) fn to_sql(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_store_is_in_wal_mode_with_full_sync() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous = FULL");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_store_and_its_wal_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store.db");
        let mode = |suffix: &str| {
            let file = tmp.path().join(format!("store.db{suffix}"));
            std::fs::metadata(file).unwrap().permissions().mode() & 0o777
        };
        let store = Store::open(&path).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&store.pool)
            .await
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(suffix), 0o600, "store.db{suffix}");
        }
        store.close().await;
        // A store an earlier version left world-readable is tightened at the next open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::open(&path).await.unwrap().close().await;
        assert_eq!(mode(""), 0o600);
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_gives_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Store::open(&path).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("store.db"), "{text}");
        assert!(text.contains("not a database"), "{text}");
    }
}
