//! Snapshots: the engine's state as of a ledger entry, so that a start replays only what came
//! after it, and the time to start no longer grows with the history.
//!
//! **What a snapshot is.** The state is a fold of the ledger, so the state as of entry `seq` is
//! a pure function of the entries up to it; a snapshot stores that function's value, with the
//! `seq` and hash of the entry it covers, and the server's signed head of that entry
//! (`ledger::head`), whose `state_sha256` seals the snapshot's bytes. Waiting requests and
//! heartbeats are not in the ledger, so not in a snapshot either: a start gives every running
//! session a fresh heartbeat, as after a replay from genesis.
//!
//! **Format** ([`FORMAT`] 1): the [`Body`] below as JSON, gzip-compressed. Maps are written as
//! lists sorted by key, so the same state always gives the same bytes: that is how the tests
//! compare a state rebuilt from a snapshot with one rebuilt from genesis.
//!
//! **Restoring** ([`restore`]): the newest signed head (file or snapshot) must still be in the
//! ledger, or the start is refused; then the newest snapshot that checks out (signed, sealed, its
//! entry still in the ledger with its hash, decodable) is loaded and the entries after it are
//! verified and replayed. A snapshot that does not check out is skipped with a WARN for the next
//! older one, down to genesis. Taking snapshots is in `snapshots`.

use std::{collections::BTreeMap, io::Read, net::IpAddr, path::Path};

use anyhow::{Context, anyhow, bail};
use ed25519_dalek::VerifyingKey;
use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use models::{FailedByReason, LicenseType, SessionStatus, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{
    secrets,
    state::{GrantState, SessionState, State, Stats},
};
use crate::{
    ledger::{
        self, Entry,
        chain::GENESIS_HASH,
        head::{self, SignedHead},
    },
    store::{SnapshotMeta, Store},
    sys::hex,
};

/// The snapshot format this version writes and reads.
pub const FORMAT: u32 = 1;

/// The state as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    next_session: u64,
    next_license: u64,
    sessions: Vec<SessionBody>,
    grants: Vec<GrantBody>,
    stats: Vec<StatsBody>,
    /// Ended sessions, oldest first.
    ended: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    id: u64,
    host: String,
    ip_address: IpAddr,
    started: OffsetDateTime,
    message: String,
    pool: Option<String>,
    token_sha256: Option<String>,
    /// The member it was opened on (failover network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_id: Option<String>,
    status: SessionStatus,
    held: Vec<u64>,
    requests: BTreeMap<String, u64>,
    granted: Vec<u64>,
    /// Absent in snapshots written before sessions kept their user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<User>,
    /// When it ended; absent while running, and in snapshots written before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    license_id: u64,
    session_id: u64,
    pool: Option<String>,
    product_id: u32,
    major_version: u32,
    product: String,
    license_type: LicenseType,
    granted: OffsetDateTime,
    released: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsBody {
    pool: Option<String>,
    product_id: u32,
    major_version: u32,
    runcount_in_use: u32,
    runcount_grants: u64,
    credit_grants: u64,
    failed: u64,
    failed_by_reason: FailedByReason,
    used_credits: i64,
    sessions_dropped: u64,
}

impl Body {
    /// The durable part of `state`: everything but the waiting requests, in a canonical order.
    pub fn of(state: &State) -> Self {
        Self::copy(state).sorted()
    }

    /// [`Body::of`] without the sorting, which can wait until the engine's lock is released.
    pub fn copy(state: &State) -> Self {
        let grants: Vec<GrantBody> = state
            .grants
            .iter()
            .map(|(id, g)| GrantBody {
                license_id: *id,
                session_id: g.session_id,
                pool: g.key.0.clone(),
                product_id: g.key.1,
                major_version: g.key.2,
                product: g.product.clone(),
                license_type: g.license_type,
                granted: g.granted,
                released: g.released,
            })
            .collect();
        let stats: Vec<StatsBody> = state
            .stats
            .iter()
            .map(|(key, s)| StatsBody {
                pool: key.0.clone(),
                product_id: key.1,
                major_version: key.2,
                runcount_in_use: s.runcount_in_use,
                runcount_grants: s.runcount_grants,
                credit_grants: s.credit_grants,
                failed: s.failed,
                failed_by_reason: s.failed_by_reason.clone(),
                used_credits: s.used_credits,
                sessions_dropped: s.sessions_dropped,
            })
            .collect();
        Self {
            next_session: state.next_session,
            next_license: state.next_license,
            sessions: state
                .sessions
                .iter()
                .map(|(id, s)| SessionBody {
                    id: *id,
                    host: s.host.clone(),
                    ip_address: s.ip_address,
                    started: s.started,
                    message: s.message.clone(),
                    pool: s.pool.clone(),
                    token_sha256: s.token_hash.as_ref().map(secrets::to_hex),
                    server_id: s.server_id.clone(),
                    status: s.status,
                    held: s.held.clone(),
                    requests: s.requests.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    granted: s.granted.clone(),
                    user: s.user.clone(),
                    ended: s.ended,
                })
                .collect(),
            grants,
            stats,
            ended: state.ended.iter().copied().collect(),
        }
    }

    /// Grants and statistics in key order (sessions and ended ones come ordered already).
    pub fn sorted(mut self) -> Self {
        self.grants.sort_unstable_by_key(|g| g.license_id);
        self.stats.sort_by(|a, b| {
            (&a.pool, a.product_id, a.major_version).cmp(&(&b.pool, b.product_id, b.major_version))
        });
        self
    }

    /// The state again, with no one waiting, keeping at most `keep_ended` ended sessions (the
    /// setting may have been lowered since the snapshot was taken).
    pub fn into_state(self, keep_ended: usize) -> State {
        let mut state = State {
            next_session: self.next_session,
            next_license: self.next_license,
            ..State::default()
        };
        for s in self.sessions {
            state.sessions.insert(
                s.id,
                SessionState {
                    host: s.host,
                    ip_address: s.ip_address,
                    started: s.started,
                    message: s.message,
                    pool: s.pool,
                    token_hash: s.token_sha256.as_deref().and_then(secrets::from_hex),
                    server_id: s.server_id,
                    status: s.status,
                    // Heartbeats are not in the ledger: whoever restores gives running
                    // sessions a fresh one, as after a replay from genesis.
                    last_heartbeat: s.started,
                    held: s.held,
                    requests: s.requests.into_iter().collect(),
                    granted: s.granted,
                    user: s.user,
                    ended: s.ended,
                },
            );
        }
        for g in self.grants {
            state.grants.insert(
                g.license_id,
                GrantState {
                    session_id: g.session_id,
                    key: (g.pool, g.product_id, g.major_version),
                    product: g.product,
                    license_type: g.license_type,
                    granted: g.granted,
                    released: g.released,
                },
            );
        }
        for s in self.stats {
            state.stats.insert(
                (s.pool, s.product_id, s.major_version),
                Stats {
                    runcount_in_use: s.runcount_in_use,
                    runcount_grants: s.runcount_grants,
                    credit_grants: s.credit_grants,
                    failed: s.failed,
                    failed_by_reason: s.failed_by_reason,
                    used_credits: s.used_credits,
                    sessions_dropped: s.sessions_dropped,
                },
            );
        }
        state.ended = self.ended.into();
        state.forget_ended(keep_ended);
        state
    }

    /// gzip-compressed JSON, and its SHA-256 (hex).
    pub fn encode(&self) -> (Vec<u8>, String) {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        serde_json::to_writer(&mut gz, self)
            .unwrap_or_else(|e| unreachable!("a snapshot body always serialises: {e}"));
        let bytes = gz
            .finish()
            .unwrap_or_else(|e| unreachable!("gzip into memory cannot fail: {e}"));
        let sha = sha256_hex(&bytes);
        (bytes, sha)
    }

    pub fn decode(bytes: &[u8]) -> anyhow::Result<Self> {
        let mut json = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut json)
            .context("it is not gzip")?;
        serde_json::from_slice(&json).context("it is not a snapshot of this format")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::lower(&Sha256::digest(bytes))
}

/// The state the ledger says, and how it was rebuilt.
#[derive(Debug)]
pub(super) struct Restored {
    pub state: State,
    /// The ledger's last entry (0 when empty) and its hash.
    pub tail: (u64, String),
    /// The entry the snapshot used covers and its hash, if one was used.
    pub snapshot: Option<(u64, String)>,
    /// Entries verified and replayed after it.
    pub replayed: u64,
}

/// Rebuilds the state from the newest usable snapshot and the entries after it: see the module's
/// documentation. `key` is the server's own, which signed the heads; `dir` holds the head file.
pub(super) async fn restore(
    store: &Store,
    key: &VerifyingKey,
    dir: &Path,
    keep_ended: usize,
) -> anyhow::Result<Restored> {
    let snapshots = store.snapshots().await?;
    let refuse = |e: head::HeadError| {
        anyhow!(
            "{e}; the server will not grant from a ledger that was tampered with \
             (`license-server ledger verify` shows more)"
        )
    };
    // A snapshot whose head does not check out is skipped below, with its WARN.
    let (newest, _) = newest_head(dir, key, &snapshots).map_err(refuse)?;
    match &newest {
        Some(head) => head::check(store, head).await.map_err(refuse)?,
        None => {
            if let Some((entries, _)) = store.ledger_tail().await? {
                tracing::warn!(
                    entries,
                    "the ledger has entries but no signed head (ledger-head.json) and no \
                     snapshot: a data directory of a version before signed heads, or they were \
                     removed; whether the ledger was cut short or rewritten cannot be told here \
                     (the heads anchored at the vendor still tell)"
                );
            }
        }
    }
    for meta in &snapshots {
        match load(store, meta, key, keep_ended).await {
            Ok(mut state) => {
                let summary = ledger::verify_from(store, meta.seq, &meta.hash, |entry: &Entry| {
                    state.apply(entry.at, &entry.event, keep_ended);
                })
                .await
                .map_err(failed_verification)?;
                return Ok(Restored {
                    state,
                    replayed: summary.entries - meta.seq,
                    tail: (summary.entries, summary.last_hash),
                    snapshot: Some((meta.seq, meta.hash.clone())),
                });
            }
            Err(e) => tracing::warn!(
                snapshot = meta.seq,
                taken_at = %meta.taken_at,
                why = format!("{e:#}"),
                "a snapshot of the ledger's state cannot be used; trying an older one"
            ),
        }
    }
    let mut state = State::default();
    let summary = ledger::verify(store, |entry: &Entry| {
        state.apply(entry.at, &entry.event, keep_ended);
    })
    .await
    .map_err(failed_verification)?;
    Ok(Restored {
        state,
        replayed: summary.entries,
        tail: (summary.entries, summary.last_hash),
        snapshot: None,
    })
}

fn failed_verification(e: anyhow::Error) -> anyhow::Error {
    anyhow!(
        "the ledger in the store failed verification: {e:#}; the server will not grant from \
         a ledger that was tampered with"
    )
}

/// Snapshots whose signed head does not check out: the entry each covers, and why.
pub type Unusable = Vec<(u64, anyhow::Error)>;

/// The newest head this server signed: of the head file in `dir` (an error if it is there and
/// does not check out) and of the `snapshots`; and each snapshot whose head does not check out,
/// with why.
pub fn newest_head(
    dir: &Path,
    key: &VerifyingKey,
    snapshots: &[SnapshotMeta],
) -> Result<(Option<SignedHead>, Unusable), head::HeadError> {
    let mut newest = head::read_file(dir, key)?;
    let mut unusable = Vec::new();
    for meta in snapshots {
        match snapshot_head(meta, key) {
            Ok(head) => newest = SignedHead::newest(newest, Some(head)),
            Err(e) => unusable.push((meta.seq, e)),
        }
    }
    Ok((newest, unusable))
}

/// The signed head stored with a snapshot, checked against the server's key and the snapshot.
pub fn snapshot_head(meta: &SnapshotMeta, key: &VerifyingKey) -> anyhow::Result<SignedHead> {
    let origin = format!("of the snapshot at entry {}", meta.seq);
    let head = SignedHead::parse(&meta.head, &origin)?;
    head.verify(key, &origin)?;
    if head.seq != meta.seq || head.hash != meta.hash {
        bail!("its signed head names entry {} instead", head.seq);
    }
    Ok(head)
}

/// A stored snapshot, if it checks out: signed by this server, its bytes the ones signed, its
/// entry still in the ledger with the same hash.
async fn load(
    store: &Store,
    meta: &SnapshotMeta,
    key: &VerifyingKey,
    keep_ended: usize,
) -> anyhow::Result<State> {
    let head = snapshot_head(meta, key)?;
    let row = store
        .snapshot(meta.seq)
        .await?
        .context("it was removed while being read")?;
    if row.format != FORMAT {
        bail!("its format {} is not this version's ({FORMAT})", row.format);
    }
    let sha = sha256_hex(&row.body);
    if head.state_sha256.as_deref() != Some(sha.as_str()) || row.body_sha256 != sha {
        bail!("its content does not match the signed checksum (it was damaged or edited)");
    }
    if meta.seq == 0 {
        if meta.hash != GENESIS_HASH {
            bail!("it covers no entry but names a hash");
        }
    } else if store.ledger_hash(meta.seq).await?.as_deref() != Some(meta.hash.as_str()) {
        bail!("the ledger no longer holds the entry it covers with the same hash");
    }
    Ok(Body::decode(&row.body)?.into_state(keep_ended))
}
