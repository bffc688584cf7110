//! The state machine of a member: its ledger. Applying a Raft entry appends the entry's events to
//! the member's `ledger` table (numbered and hash-linked there, so every member holds the same
//! chain) and records the entry's log id, in one transaction. A snapshot is the ledger itself,
//! with the last applied log id and membership: what a member that is too far behind, or new,
//! installs in place of its own.

use std::io::Cursor;

use flate2::{Compression, read::GzDecoder, write::GzEncoder};

use openraft::{
    EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership,
    storage::RaftStateMachine,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::types::{Applied, Error, Member, NodeId, TypeConfig, read_error, write_error};
use crate::store::{LedgerRow, NewLedgerRow, RowTuple, Store};

type Entry = openraft::Entry<TypeConfig>;
type Membership = StoredMembership<NodeId, Member>;

const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";

/// The state machine of one member; cheap to clone (its snapshot builder is a clone).
#[derive(Debug, Clone)]
pub struct StateMachine {
    store: Store,
}

/// A snapshot's data: the ledger's rows, exactly as stored, and the state they are as of.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotBody {
    applied: Option<LogId<NodeId>>,
    membership: Membership,
    /// `[seq, at, kind, body, prev_hash, hash]`.
    rows: Vec<RowTuple>,
}

/// A snapshot's bytes: its body as gzip-compressed JSON (ledger rows compress about tenfold,
/// and a snapshot crosses the network to a member that is behind).
fn encode(body: &SnapshotBody) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    serde_json::to_writer(&mut gz, body)?;
    gz.finish()
}

fn decode(data: &[u8]) -> std::io::Result<SnapshotBody> {
    Ok(serde_json::from_reader(GzDecoder::new(data))?)
}

fn to_text(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| write_error(&e))
}

impl StateMachine {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn applied(&self) -> Result<(Option<LogId<NodeId>>, Membership), Error> {
        let read = |name| async move {
            self.store
                .raft_state(name)
                .await
                .map_err(|e| read_error(&e))
        };
        Ok((
            parsed(read(APPLIED).await?)?,
            parsed(read(MEMBERSHIP).await?)?,
        ))
    }
}

/// A stored value (JSON), or its default while none is stored.
fn parsed<T: DeserializeOwned + Default>(text: Option<String>) -> Result<T, Error> {
    text.map_or_else(
        || Ok(T::default()),
        |text| serde_json::from_str(&text).map_err(|e| read_error(&e)),
    )
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, Error> {
        let (rows, mut values) = self
            .store
            .ledger_with_raft_state(&[APPLIED, MEMBERSHIP])
            .await
            .map_err(|e| read_error(&e))?;
        let membership: Membership = parsed(values.pop().flatten())?;
        let applied: Option<LogId<NodeId>> = parsed(values.pop().flatten())?;
        let body = SnapshotBody {
            applied,
            membership: membership.clone(),
            rows: rows.into_iter().map(RowTuple::from).collect(),
        };
        let data = tokio::task::spawn_blocking(move || encode(&body))
            .await
            .map_err(|e| write_error(&e))?
            .map_err(|e| write_error(&e))?;
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id: format!(
                "{}-{}",
                applied.map_or(0, |id| id.index),
                time::OffsetDateTime::now_utc().unix_timestamp_nanos()
            ),
        };
        self.store
            .save_raft_snapshot(&to_text(&meta)?, &data)
            .await
            .map_err(|e| write_error(&e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), Error> {
        self.applied().await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let (_, mut membership) = self.applied().await?;
        let mut rows: Vec<NewLedgerRow> = Vec::new();
        let mut counts = Vec::new();
        let mut last = None;
        for entry in entries {
            last = Some(entry.log_id);
            let before = rows.len();
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(proposal) => {
                    rows.extend(proposal.events.iter().map(|p| p.event.row(p.at)));
                }
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            counts.push(rows.len() - before);
        }
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        let state = [
            (APPLIED, to_text(&Some(last))?),
            (MEMBERSHIP, to_text(&membership)?),
        ];
        let seqs = self
            .store
            .apply_raft(&rows, &state)
            .await
            .map_err(|e| write_error(&e))?;
        let mut seqs = seqs.into_iter();
        Ok(counts
            .into_iter()
            .map(|n| Applied {
                seqs: seqs.by_ref().take(n).collect(),
            })
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Error> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), Error> {
        let data = snapshot.into_inner();
        let body = decode(&data).map_err(|e| read_error(&e))?;
        let rows: Vec<LedgerRow> = body.rows.into_iter().map(LedgerRow::from).collect();
        let state = [
            (APPLIED, to_text(&meta.last_log_id)?),
            (MEMBERSHIP, to_text(&meta.last_membership)?),
        ];
        self.store
            .install_raft_snapshot(&rows, &state, &to_text(meta)?, &data)
            .await
            .map_err(|e| write_error(&e))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, Error> {
        let Some((meta, data)) = self
            .store
            .raft_snapshot()
            .await
            .map_err(|e| read_error(&e))?
        else {
            return Ok(None);
        };
        let meta: SnapshotMeta<NodeId, Member> =
            serde_json::from_str(&meta).map_err(|e| read_error(&e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
