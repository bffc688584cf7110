//! The ledger: an append-only, hash-chained record of every change to sessions, grants and
//! credits, and of license installs and pool assignments.
//!
//! **It is the source of truth for the license protocol.** The in-memory state that answers
//! requests (`sessions::Engine`) is a fold of the ledger's events: at start the server verifies
//! the whole chain and replays it, and every live change is applied in memory and appended here in
//! the same order, under the same lock. So whatever a client was told can be rebuilt after a
//! crash, and what is in memory is never anything the ledger could not reproduce.
//!
//! **Durable before acknowledged.** A change is acknowledged only once its row is committed
//! (SQLite WAL, `synchronous = FULL`). Committing each change alone would cap the server at one
//! fsync per request, so writes are **group-committed**: one writer task takes everything that
//! queued up while the previous commit was in flight and commits it in one transaction, then
//! tells every waiting request at once. Under load, one fsync serves hundreds of requests.
//!
//! **Tamper evident.** Each row stores `hash = SHA-256(prev_hash, seq, at, body)`, the first
//! row's `prev_hash` being zeros. Editing a row breaks its own hash; deleting or reordering rows
//! breaks the link of the next. Hashes are over the stored text, never a re-serialisation.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use models::{LicenseType, SessionStatus, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{GENESIS_HASH, LedgerAppender, LedgerRow, NewLedgerRow, Store, StoreError};

/// Most rows in one group commit; more wait for the next.
const MAX_BATCH: usize = 4096;

/// Rows between two checkpoints of the WAL (taken on the side, see `Store::ledger_appender`).
/// About a megabyte of WAL at typical row sizes.
const CHECKPOINT_EVERY: usize = 4000;

/// One change. The JSON of an event is a ledger row's `body`; its `kind` is the row's `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    SessionOpened {
        session_id: u64,
        host: String,
        ip_address: IpAddr,
        message: String,
        pool: Option<String>,
        user: Option<User>,
    },
    LicenseGranted {
        session_id: u64,
        license_id: u64,
        request_id: String,
        product_id: u32,
        major_version: u32,
        product: String,
        #[serde(rename = "type")]
        license_type: LicenseType,
        pool: Option<String>,
    },
    /// A request that got no license; counts as `failed` for the cartridge it asked for first.
    LicenseRefused {
        session_id: u64,
        product_id: u32,
        major_version: u32,
        pool: Option<String>,
    },
    LicenseReleased {
        license_id: u64,
        credits_used: u64,
    },
    /// A session ended: finished by the client or an administrator, or dropped for missing
    /// heartbeats. Releases everything it still held, in the same entry.
    SessionClosed {
        session_id: u64,
        status: SessionStatus,
        released: Vec<ReleasedLicense>,
        /// Who ended it, when not the client itself (an administrator, the heartbeat timeout).
        by: Option<String>,
    },
    LicenseInstalled {
        key: String,
        sha256: String,
        serial_number: u64,
        /// The administrator who installed it through the admin API; `None` from the CLI.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    CartridgeAssigned {
        serial_number: u64,
        pool: Option<String>,
    },
    /// An administrator account was added, got a new password, or was removed.
    AdminUserChanged {
        principal: String,
        change: String,
        role: Option<String>,
        by: String,
    },
    /// Licensed users were cleared: one (`realm`, `principal`) or all.
    LicensedUsersCleared {
        realm: Option<String>,
        principal: Option<String>,
        removed: u64,
        by: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasedLicense {
    pub license_id: u64,
    pub credits_used: u64,
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SessionOpened { .. } => "session_opened",
            Self::LicenseGranted { .. } => "license_granted",
            Self::LicenseRefused { .. } => "license_refused",
            Self::LicenseReleased { .. } => "license_released",
            Self::SessionClosed { .. } => "session_closed",
            Self::LicenseInstalled { .. } => "license_installed",
            Self::CartridgeAssigned { .. } => "cartridge_assigned",
            Self::AdminUserChanged { .. } => "admin_user_changed",
            Self::LicensedUsersCleared { .. } => "licensed_users_cleared",
        }
    }

    /// The row this event is stored as.
    pub fn row(&self, at: OffsetDateTime) -> NewLedgerRow {
        NewLedgerRow {
            at,
            kind: self.kind(),
            body: serde_json::to_string(self)
                .unwrap_or_else(|e| unreachable!("ledger events always serialise: {e}")),
        }
    }
}

/// The chain: `SHA-256(prev_hash "\n" seq "\n" at "\n" body)`, lowercase hex.
pub fn chain_hash(prev_hash: &str, seq: u64, at: &str, body: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [prev_hash, &seq.to_string(), at, body] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    lower_hex(&hasher.finalize())
}

/// Hex without an allocation per byte: every ledger row is hashed on the hot path.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Appends one event outside the server's writer (the CLI's `license install`, `cartridge
/// assign`), durable when this returns.
pub async fn append_now(store: &Store, event: &Event) -> Result<u64, StoreError> {
    let seqs = store
        .append_ledger(&[event.row(OffsetDateTime::now_utc())])
        .await?;
    Ok(seqs.first().copied().unwrap_or(0))
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LedgerError {
    #[error("the ledger could not be written; the server stopped taking changes: {0}")]
    WriteFailed(String),
    #[error("ledger entry {seq} is not valid: {why}")]
    Broken { seq: u64, why: String },
}

/// A ledger row, checked and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub at: OffsetDateTime,
    pub event: Event,
}

/// Reads the whole ledger in order, checking every link and hash, and calls `each` with every
/// entry. Stops at the first bad row, naming it.
pub async fn verify(
    store: &Store,
    mut each: impl FnMut(&Entry),
) -> Result<VerifySummary, anyhow::Error> {
    let mut prev = GENESIS_HASH.to_owned();
    let mut expected_seq = 1;
    loop {
        let rows = store.ledger_rows(expected_seq - 1, 10_000).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let entry = check_row(&row, expected_seq, &prev)?;
            each(&entry);
            prev = row.hash;
            expected_seq += 1;
        }
    }
    Ok(VerifySummary {
        entries: expected_seq - 1,
        last_hash: prev,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    pub entries: u64,
    pub last_hash: String,
}

fn check_row(row: &LedgerRow, expected_seq: u64, prev: &str) -> Result<Entry, LedgerError> {
    let broken = |why: String| LedgerError::Broken { seq: row.seq, why };
    if row.seq != expected_seq {
        return Err(LedgerError::Broken {
            seq: expected_seq,
            why: format!("missing; the next entry is {}", row.seq),
        });
    }
    if row.prev_hash != prev {
        return Err(broken(
            "its link to the entry before does not match (an entry before it was changed or removed)"
                .into(),
        ));
    }
    if chain_hash(prev, row.seq, &row.at, &row.body) != row.hash {
        return Err(broken(
            "its content does not match its hash (it was edited)".into(),
        ));
    }
    let event: Event = serde_json::from_str(&row.body)
        .map_err(|e| broken(format!("its body is not a ledger event: {e}")))?;
    if event.kind() != row.kind {
        return Err(broken(format!(
            "its kind {:?} does not match its body ({})",
            row.kind,
            event.kind()
        )));
    }
    let at = OffsetDateTime::parse(&row.at, &Rfc3339)
        .map_err(|e| broken(format!("its time {:?} is not RFC 3339: {e}", row.at)))?;
    Ok(Entry {
        seq: row.seq,
        at,
        event,
    })
}

struct Pending {
    /// `None`: a barrier, acknowledged once everything queued before it is durable.
    row: Option<NewLedgerRow>,
    done: oneshot::Sender<Result<u64, LedgerError>>,
}

/// Hands events to the group-commit writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Pending>,
    failed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("row", &self.row).finish()
    }
}

/// Resolves when an appended event is durable.
#[derive(Debug)]
pub struct Commit(oneshot::Receiver<Result<u64, LedgerError>>);

impl Commit {
    /// Waits until the event is committed; its sequence number (0 for a barrier).
    pub async fn durable(self) -> Result<u64, LedgerError> {
        self.0.await.unwrap_or_else(|_| {
            Err(LedgerError::WriteFailed(
                "the ledger writer stopped".to_owned(),
            ))
        })
    }
}

impl Writer {
    /// Starts the writer task. It stops when `shutdown` is cancelled, after committing what was
    /// queued.
    pub fn spawn(store: Store, shutdown: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let failed = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run_writer(store, receiver, failed.clone(), shutdown));
        (Self { queue, failed }, task)
    }

    /// Queues `event`; call this under the same lock that applied it in memory, so the ledger's
    /// order is the order of the decisions.
    pub fn append(&self, at: OffsetDateTime, event: &Event) -> Commit {
        self.send(Some(event.row(at)))
    }

    /// A commit that resolves once everything appended before it is durable.
    pub fn barrier(&self) -> Commit {
        self.send(None)
    }

    /// Whether a write failed: from then on nothing is acknowledged, since memory may hold what
    /// the disk does not.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn send(&self, row: Option<NewLedgerRow>) -> Commit {
        let (done, receiver) = oneshot::channel();
        if self.has_failed() {
            let _ = done.send(Err(LedgerError::WriteFailed(
                "an earlier write failed".to_owned(),
            )));
        } else if let Err(mpsc::error::SendError(pending)) = self.queue.send(Pending { row, done })
        {
            let _ = pending.done.send(Err(LedgerError::WriteFailed(
                "the ledger writer stopped".to_owned(),
            )));
        }
        Commit(receiver)
    }
}

async fn run_writer(
    store: Store,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
    failed: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut appender = None;
    let mut since_checkpoint = 0;
    let mut checkpointing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let first = tokio::select! {
            biased;
            pending = receiver.recv() => pending,
            () = shutdown.cancelled() => {
                // Commit what is queued, then stop taking more.
                receiver.close();
                receiver.recv().await
            }
        };
        let Some(first) = first else {
            if let Some(checkpoint) = checkpointing {
                let _ = checkpoint.await;
            }
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let rows: Vec<NewLedgerRow> = batch.iter().filter_map(|p| p.row.clone()).collect();
        let started = std::time::Instant::now();
        let result = if rows.is_empty() || failed.load(Ordering::SeqCst) {
            if failed.load(Ordering::SeqCst) {
                Err(LedgerError::WriteFailed(
                    "an earlier write failed".to_owned(),
                ))
            } else {
                Ok(Vec::new())
            }
        } else {
            append(&store, &mut appender, &rows)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot write the ledger; refusing all changes from now on");
                    failed.store(true, Ordering::SeqCst);
                    LedgerError::WriteFailed(e.to_string())
                })
        };
        tracing::trace!(
            rows = rows.len(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "ledger batch committed"
        );
        since_checkpoint += rows.len();
        if since_checkpoint >= CHECKPOINT_EVERY
            && checkpointing.as_ref().is_none_or(|c| c.is_finished())
        {
            since_checkpoint = 0;
            let store = store.clone();
            checkpointing = Some(tokio::spawn(async move {
                if let Err(e) = store.checkpoint().await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; will try again");
                }
            }));
        }
        let mut seqs = result.as_ref().map(|s| s.iter()).ok();
        for pending in batch {
            let answer = match (&result, &mut seqs) {
                (Ok(_), Some(seqs)) => Ok(if pending.row.is_some() {
                    seqs.next().copied().unwrap_or(0)
                } else {
                    0
                }),
                (Err(e), _) => Err(e.clone()),
                (Ok(_), None) => Ok(0),
            };
            let _ = pending.done.send(answer);
        }
    }
}

/// Appends with the writer's own connection, opened on first use and reopened after an error.
async fn append(
    store: &Store,
    appender: &mut Option<LedgerAppender>,
    rows: &[NewLedgerRow],
) -> Result<Vec<u64>, StoreError> {
    let mut current = match appender.take() {
        Some(current) => current,
        None => store.ledger_appender().await?,
    };
    let seqs = current.append(rows).await?;
    *appender = Some(current);
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        (dir, store)
    }

    fn refused(session_id: u64) -> Event {
        Event::LicenseRefused {
            session_id,
            product_id: 1,
            major_version: 0,
            pool: None,
        }
    }

    #[tokio::test]
    async fn concurrent_appends_are_group_committed_in_order_and_the_chain_verifies() {
        let (_dir, store) = store().await;
        let shutdown = CancellationToken::new();
        let (writer, task) = Writer::spawn(store.clone(), shutdown.clone());
        let commits: Vec<_> = (1..=500)
            .map(|i| writer.append(OffsetDateTime::now_utc(), &refused(i)))
            .collect();
        let mut seqs = Vec::new();
        for commit in commits {
            seqs.push(commit.durable().await.unwrap());
        }
        assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
        writer.barrier().durable().await.unwrap();
        // Another process appends to the same chain.
        append_now(&store, &refused(501)).await.unwrap();
        assert_eq!(
            writer
                .append(OffsetDateTime::now_utc(), &refused(502))
                .durable()
                .await,
            Ok(502)
        );

        let mut sessions = Vec::new();
        let summary = verify(&store, |entry| {
            if let Event::LicenseRefused { session_id, .. } = entry.event {
                sessions.push(session_id);
            }
        })
        .await
        .unwrap();
        assert_eq!(summary.entries, 502);
        assert_eq!(sessions, (1..=502).collect::<Vec<_>>());
        shutdown.cancel();
        task.await.unwrap();
    }

    #[test]
    fn the_chain_hash_is_sha256_of_the_fields_in_lowercase_hex() {
        // sha256("a\n1\nb\nc\n")
        let expected = {
            let digest = Sha256::digest(b"a\n1\nb\nc\n");
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(chain_hash("a", 1, "b", "c"), expected);
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn every_kind_of_tampering_is_named() {
        let body = serde_json::to_string(&refused(1)).unwrap();
        let at = "2026-11-22T10:00:00Z";
        let hash = chain_hash(GENESIS_HASH, 1, at, &body);
        let row = LedgerRow {
            seq: 1,
            at: at.into(),
            kind: "license_refused".into(),
            body,
            prev_hash: GENESIS_HASH.into(),
            hash,
        };
        check_row(&row, 1, GENESIS_HASH).unwrap();
        let edited = LedgerRow {
            body: row.body.replace("\"session_id\":1", "\"session_id\":2"),
            ..row.clone()
        };
        let err = check_row(&edited, 1, GENESIS_HASH).unwrap_err();
        assert!(
            err.to_string().contains("entry 1") && err.to_string().contains("edited"),
            "{err}"
        );
        let err = check_row(&row, 1, &"1".repeat(64)).unwrap_err();
        assert!(err.to_string().contains("link"), "{err}");
        let err = check_row(
            &LedgerRow {
                seq: 2,
                ..row.clone()
            },
            1,
            GENESIS_HASH,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("entry 1 is not valid: missing"),
            "{err}"
        );
    }
}
