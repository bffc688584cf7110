//! The state machine of a member: its ledger. Applying a Raft entry appends the entry's events to
//! the member's `ledger` table (numbered and hash-linked there, so every member holds the same
//! chain) and records the entry's log id, in one transaction; then the member's engine applies
//! them too ([`Link`]). An entry decided on top of a ledger entry that is no longer the last
//! (`Proposal::after`) is refused alike on every member. A snapshot is the ledger itself, with
//! the last applied log id and membership: what a member that is too far behind, or new, installs
//! in place of its own, after which its engine rebuilds from it.

use std::io::Cursor;

use flate2::{Compression, read::GzDecoder, write::GzEncoder};

use openraft::{
    EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership,
    storage::RaftStateMachine,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use time::OffsetDateTime;

use super::{
    replica::Link,
    types::{Applied, Error, Member, NodeId, Proposal, TypeConfig, read_error, write_error},
};
use crate::ledger::{Event, Refusal, event::INVENTORY_KINDS};
use crate::store::{LedgerRow, NewLedgerRow, RowTuple, Store};
use crate::sys::timestamp::parse_rfc3339;

type Entry = openraft::Entry<TypeConfig>;
type Membership = StoredMembership<NodeId, Member>;

const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";

/// The entries of a snapshot's ledger that change a member's licenses, pools or network id.
fn inventory_entries(rows: &[LedgerRow]) -> Result<Vec<(OffsetDateTime, Event)>, Error> {
    rows.iter()
        .filter(|row| INVENTORY_KINDS.contains(&row.kind.as_str()))
        .map(|row| {
            let at = parse_rfc3339(&row.at).map_err(|e| read_error(&e))?;
            let event: Event = serde_json::from_str(&row.body).map_err(|e| read_error(&e))?;
            Ok((at, event))
        })
        .collect()
}

/// The state machine of one member; cheap to clone (its snapshot builder is a clone).
#[derive(Debug, Clone)]
pub struct StateMachine {
    store: Store,
    /// This member's id, to know its own proposals.
    me: NodeId,
    /// The engine that applies what the ledger does; none in the storage tests.
    link: Option<Link>,
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
    /// A state machine of the ledger alone.
    #[cfg(test)]
    pub fn new(store: Store) -> Self {
        Self {
            store,
            me: 0,
            link: None,
        }
    }

    /// The state machine of member `me`, whose engine applies what its ledger does.
    pub fn linked(store: Store, me: NodeId, link: Link) -> Self {
        Self {
            store,
            me,
            link: Some(link),
        }
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
        let _gate = match &self.link {
            Some(link) => Some(link.gate.clone().lock_owned().await),
            None => None,
        };
        let (_, mut membership) = self.applied().await?;
        let mut groups = Vec::new();
        let mut proposals: Vec<Option<Proposal>> = Vec::new();
        let mut last = None;
        for entry in entries {
            last = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => proposals.push(None),
                EntryPayload::Normal(proposal) => {
                    let rows: Vec<NewLedgerRow> =
                        proposal.events.iter().map(|p| p.event.row(p.at)).collect();
                    groups.push((proposal.after, rows));
                    proposals.push(Some(proposal));
                }
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m);
                    proposals.push(None);
                }
            }
        }
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        let state = [
            (APPLIED, to_text(&Some(last))?),
            (MEMBERSHIP, to_text(&membership)?),
        ];
        let mut applied = self
            .store
            .apply_raft(&groups, &state)
            .await
            .map_err(|e| write_error(&e))?
            .into_iter();
        let mut answers = Vec::with_capacity(proposals.len());
        for proposal in proposals {
            let Some(proposal) = proposal else {
                answers.push(Applied::default());
                continue;
            };
            let Some(seqs) = applied.next().flatten() else {
                answers.push(Applied {
                    seqs: Vec::new(),
                    refused: true,
                });
                continue;
            };
            if let Some(link) = &self.link {
                let mine = proposal
                    .origin
                    .filter(|o| o.member == self.me)
                    .map(|o| o.epoch);
                let entries: Vec<_> = seqs
                    .iter()
                    .zip(proposal.events)
                    .map(|(seq, p)| (*seq, p.at, p.event))
                    .collect();
                link.replica
                    .applied(mine, &entries)
                    .await
                    .map_err(|e| write_error(&std::io::Error::other(format!("{e:#}"))))?;
            }
            answers.push(Applied {
                seqs,
                refused: false,
            });
        }
        Ok(answers)
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
        let rows_count = rows.len();
        let inventory = inventory_entries(&rows)?;
        let state = [
            (APPLIED, to_text(&meta.last_log_id)?),
            (MEMBERSHIP, to_text(&meta.last_membership)?),
        ];
        let _gate = match &self.link {
            Some(link) => Some(link.gate.clone().lock_owned().await),
            None => None,
        };
        self.store
            .install_raft_snapshot(&rows, &state, &to_text(meta)?, &data)
            .await
            .map_err(|e| write_error(&e))?;
        if let Some(link) = &self.link {
            // The licenses the ledger installed count here too, before the engine rebuilds
            // from them (a new member has none of their files).
            link.replica
                .caught_up(&inventory)
                .await
                .map_err(|e| write_error(&std::io::Error::other(format!("{e:#}"))))?;
            link.replica
                .follow(Refusal::Following(
                    "this member caught up from the coordinator's snapshot".to_owned(),
                ))
                .await
                .map_err(|e| write_error(&std::io::Error::other(format!("{e:#}"))))?;
        }
        tracing::info!(
            entries = rows_count,
            log_index = meta.last_log_id.map_or(0, |id| id.index),
            "caught up from the coordinator's snapshot of the ledger"
        );
        Ok(())
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
