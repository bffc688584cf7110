//! The store: every byte of state the server keeps in a database goes through this module, and
//! no SQL is written anywhere else. That keeps the door open for the PostgreSQL backend that a
//! failover network will share: a second implementation of these few functions, not a hunt
//! through the handlers.
//!
//! Today it is an embedded SQLite database in the data directory, in WAL mode (readers never wait
//! for the writer) with `synchronous = FULL`: a commit is on disk before it returns, because a
//! license grant or a credit debit that was acknowledged must survive a power cut. Migrations are
//! compiled into the binary and applied at start.

use std::{collections::HashMap, path::Path, time::Duration};

use sqlx::{
    Sqlite, SqliteConnection, SqlitePool,
    migrate::Migrator,
    pool::PoolConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use thiserror::Error;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    identity::{ServerId, ServerIdError},
    ledger::chain_hash,
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
    #[error(transparent)]
    ServerId(#[from] ServerIdError),
    #[error("a number is too large for the store")]
    OutOfRange,
}

/// A handle on the store; cheap to clone (it is a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            pool: connect(path, &MIGRATOR).await?,
        })
    }

    /// This server's id: read from the store, or generated and stored if this is the first start.
    /// Safe against two processes doing it at once: the insert is a no-op when a row exists, and
    /// both then read the one row that won.
    pub async fn server_id(&self) -> Result<ServerId, StoreError> {
        let candidate = ServerId::generate()?;
        sqlx::query(
            "INSERT INTO server_identity (id, server_id, created) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(candidate.as_str())
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        let stored: String =
            sqlx::query_scalar("SELECT server_id FROM server_identity WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(ServerId::parse(stored)?)
    }

    /// Records that the license `key` with content `sha256` was installed at `installed`, making it
    /// the most recent install, and appends `ledger` in the same transaction. Re-recording the
    /// same content keeps its original place.
    pub async fn record_install(
        &self,
        key: &str,
        sha256: &str,
        installed: OffsetDateTime,
        ledger: NewLedgerRow,
    ) -> Result<(), StoreError> {
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
            append_rows(conn, std::slice::from_ref(&ledger)).await?;
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
                installed: OffsetDateTime::parse(&installed, &Rfc3339).ok(),
            })
            .collect())
    }

    /// Puts the cartridge `serial_number` into `pool`, or back into the default pool (`None`).
    pub async fn assign_pool(
        &self,
        serial_number: u64,
        pool: Option<&str>,
        ledger: NewLedgerRow,
    ) -> Result<(), StoreError> {
        let serial = i64::try_from(serial_number).map_err(|_| StoreError::OutOfRange)?;
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
            append_rows(conn, std::slice::from_ref(&ledger)).await?;
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

    /// Appends `rows` to the ledger in one transaction (see [`append_rows`]). Returns the sequence
    /// number of each row.
    pub async fn append_ledger(&self, rows: &[NewLedgerRow]) -> Result<Vec<u64>, StoreError> {
        self.write_tx(async |conn| append_rows(conn, rows).await)
            .await
    }

    async fn write_tx<T>(
        &self,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        write_tx(&self.pool, work).await
    }

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
        self.write_tx(async |conn| {
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
                append_rows(conn, std::slice::from_ref(&ledger)).await?;
            }
            Ok(added)
        })
        .await
    }

    /// Adds the first administrator if there is none at all; `Ok(false)` if there is one.
    pub async fn add_first_admin_user(
        &self,
        user: &AdminUserRow,
        ledger: NewLedgerRow,
    ) -> Result<bool, StoreError> {
        self.write_tx(async |conn| {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_users")
                .fetch_one(&mut *conn)
                .await?;
            if count > 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO admin_users (principal, password_hash, role, scope, created)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(&user.principal)
            .bind(&user.password_hash)
            .bind(&user.role)
            .bind(&user.scope)
            .bind(now_rfc3339())
            .execute(&mut *conn)
            .await?;
            append_rows(conn, std::slice::from_ref(&ledger)).await?;
            Ok(true)
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
        self.write_tx(async |conn| {
            let changed =
                sqlx::query("UPDATE admin_users SET password_hash = ?2 WHERE principal = ?1")
                    .bind(principal)
                    .bind(password_hash)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                    == 1;
            if changed {
                end_tokens_and_record(conn, principal, &ledger).await?;
            }
            Ok(changed)
        })
        .await
    }

    /// Removes an administrator and ends their tokens; `Ok(false)` if there was none.
    pub async fn remove_admin_user(
        &self,
        principal: &str,
        ledger: NewLedgerRow,
    ) -> Result<bool, StoreError> {
        self.write_tx(async |conn| {
            let removed = sqlx::query("DELETE FROM admin_users WHERE principal = ?1")
                .bind(principal)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                == 1;
            if removed {
                end_tokens_and_record(conn, principal, &ledger).await?;
            }
            Ok(removed)
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
                    created: OffsetDateTime::parse(&created, &Rfc3339).ok()?,
                    last_used: OffsetDateTime::parse(&last_used, &Rfc3339).ok()?,
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
                append_rows(conn, std::slice::from_ref(&ledger)).await?;
            }
            let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM licensed_users")
                .fetch_one(&mut *conn)
                .await?;
            Ok((removed, u64::try_from(remaining).unwrap_or(0)))
        })
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

    /// Copies what the WAL holds into the database file as far as readers allow, without
    /// blocking writers (a PASSIVE checkpoint), so the WAL does not grow without bound.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Up to `limit` ledger rows after `after`, in order: for verifying and replaying the ledger
    /// without holding it all in memory.
    pub async fn ledger_rows(&self, after: u64, limit: u32) -> Result<Vec<LedgerRow>, StoreError> {
        let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT seq, at, kind, body, prev_hash, hash FROM ledger
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(i64::try_from(after).map_err(|_| StoreError::OutOfRange)?)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, at, kind, body, prev_hash, hash)| LedgerRow {
                seq: u64::try_from(seq).unwrap_or(0),
                at,
                kind,
                body,
                prev_hash,
                hash,
            })
            .collect())
    }

    /// Waits for running queries and closes the database cleanly (the WAL is checkpointed).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// After an administrator's password changed or the account went: their logged-in tokens end, and
/// the change goes into the ledger, in the caller's transaction.
async fn end_tokens_and_record(
    conn: &mut SqliteConnection,
    principal: &str,
    ledger: &NewLedgerRow,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM admin_tokens WHERE principal = ?1 AND realm = 'local'")
        .bind(principal)
        .execute(&mut *conn)
        .await?;
    append_rows(conn, std::slice::from_ref(ledger)).await?;
    Ok(())
}

/// Runs `work` in a write transaction. IMMEDIATE: the write lock is taken before the first
/// read, so what `work` reads (the ledger's tail) cannot change before it writes.
pub(crate) async fn write_tx<T>(
    pool: &SqlitePool,
    work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    match work(&mut conn).await {
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
pub(crate) async fn connect(path: &Path, migrator: &Migrator) -> Result<SqlitePool, StoreError> {
    let shown = path.display().to_string();
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

/// The last ledger row's sequence number and hash (0 and [`GENESIS_HASH`] when empty).
type Tail = (u64, String);

/// The last ledger row: its sequence number and hash.
async fn ledger_tail(conn: &mut SqliteConnection) -> Result<Tail, StoreError> {
    let tail: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match tail {
        Some((seq, hash)) => (
            u64::try_from(seq).map_err(|_| StoreError::OutOfRange)?,
            hash,
        ),
        None => (0, GENESIS_HASH.to_owned()),
    })
}

/// Rows chained onto `tail`, ready for [`INSERT_AFTER`]: the JSON array of rows, their sequence
/// numbers, and the new tail.
fn chain_rows(tail: &Tail, rows: &[NewLedgerRow]) -> Result<(String, Vec<u64>, Tail), StoreError> {
    let (mut seq, mut prev) = tail.clone();
    let mut seqs = Vec::with_capacity(rows.len());
    let mut batch = Vec::with_capacity(rows.len());
    for row in rows {
        seq += 1;
        let at = rfc3339(row.at);
        let hash = chain_hash(&prev, seq, &at, &row.body);
        let seq_value = i64::try_from(seq).map_err(|_| StoreError::OutOfRange)?;
        batch.push(serde_json::json!([
            seq_value, at, row.kind, row.body, prev, hash
        ]));
        seqs.push(seq);
        prev = hash;
    }
    Ok((
        serde_json::Value::Array(batch).to_string(),
        seqs,
        (seq, prev),
    ))
}

/// Inserts a JSON array of chained rows (`?1`), but only if the ledger still ends at sequence
/// number `?2`. One statement, so one implicit transaction and one fsync for the whole batch
/// whatever its size; and if another process appended in the meantime, nothing is inserted and
/// the caller re-chains onto the new tail.
const INSERT_AFTER: &str = "INSERT INTO ledger (seq, at, kind, body, prev_hash, hash)
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
            json_extract(value, '$[2]'), json_extract(value, '$[3]'),
            json_extract(value, '$[4]'), json_extract(value, '$[5]')
     FROM json_each(?1)
     WHERE (SELECT COALESCE(MAX(seq), 0) FROM ledger) = ?2";

/// Appends `rows` inside the caller's write transaction (which already holds the write lock, so
/// the tail it reads cannot move).
async fn append_rows(
    conn: &mut SqliteConnection,
    rows: &[NewLedgerRow],
) -> Result<Vec<u64>, StoreError> {
    let tail = ledger_tail(conn).await?;
    let (json, seqs, _) = chain_rows(&tail, rows)?;
    sqlx::query(INSERT_AFTER)
        .bind(json)
        .bind(i64::try_from(tail.0).map_err(|_| StoreError::OutOfRange)?)
        .execute(&mut *conn)
        .await?;
    Ok(seqs)
}

/// The ledger writer's own connection, and the tail it last wrote: a batch costs one statement
/// (no transaction of its own, no tail query) unless another process appended meanwhile.
#[derive(Debug)]
pub struct LedgerAppender {
    conn: PoolConnection<Sqlite>,
    tail: Option<Tail>,
}

impl LedgerAppender {
    pub async fn append(&mut self, rows: &[NewLedgerRow]) -> Result<Vec<u64>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        loop {
            let tail = match self.tail.take() {
                Some(tail) => tail,
                None => ledger_tail(&mut self.conn).await?,
            };
            let (json, seqs, new_tail) = chain_rows(&tail, rows)?;
            let inserted = sqlx::query(INSERT_AFTER)
                .bind(json)
                .bind(i64::try_from(tail.0).map_err(|_| StoreError::OutOfRange)?)
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
            // Someone else appended (`license install` from the CLI): chain onto their tail.
        }
    }
}

/// The `prev_hash` of the first ledger row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A ledger row to append; the store numbers and chains it.
#[derive(Debug, Clone)]
pub struct NewLedgerRow {
    pub at: OffsetDateTime,
    pub kind: &'static str,
    pub body: String,
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

/// A row of `license_installs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub key: String,
    pub sha256: String,
    /// `None` if the stored time does not parse (a damaged row orders first, it does not fail).
    pub installed: Option<OffsetDateTime>,
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_server_id_is_created_once_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store.db");
        let store = Store::open(&path).await.unwrap();
        let first = store.server_id().await.unwrap();
        assert_eq!(store.server_id().await.unwrap(), first);
        store.close().await;

        let reopened = Store::open(&path).await.unwrap();
        assert_eq!(reopened.server_id().await.unwrap(), first);
    }

    #[tokio::test]
    async fn installs_keep_their_order_and_a_reinstall_of_the_same_file_keeps_its_place() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        let t = OffsetDateTime::now_utc();
        let row = || NewLedgerRow {
            at: t,
            kind: "test",
            body: "{}".into(),
        };
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
    }

    #[tokio::test]
    async fn pool_assignments_are_kept_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        let row = || NewLedgerRow {
            at: OffsetDateTime::now_utc(),
            kind: "test",
            body: "{}".into(),
        };
        store.assign_pool(7, Some("farm"), row()).await.unwrap();
        store.assign_pool(8, Some("farm"), row()).await.unwrap();
        store.assign_pool(7, Some("night"), row()).await.unwrap();
        store.assign_pool(8, None, row()).await.unwrap();
        let pools = store.pools().await.unwrap();
        assert_eq!(pools, HashMap::from([(7, "night".to_owned())]));
    }

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
