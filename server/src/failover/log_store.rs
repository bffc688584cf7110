//! The Raft log of a member, in its store: entries as JSON by index, the vote and the committed
//! and purged log ids as named values. Every write is durable when it returns (the store syncs
//! each transaction), so an append is reported flushed as soon as it is stored.

use std::{fmt::Debug, ops::Bound, ops::RangeBounds};

use openraft::{
    LogId, LogState, RaftLogReader, Vote,
    storage::{LogFlushed, RaftLogStorage},
};
use serde::{Serialize, de::DeserializeOwned};

use super::types::{Error, NodeId, TypeConfig, read_error, write_error};
use crate::store::{Store, Sync};

type Entry = openraft::Entry<TypeConfig>;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

/// The log storage of one member; cheap to clone (its reader is a clone).
#[derive(Debug, Clone)]
pub struct LogStore {
    store: Store,
}

impl LogStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn value<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        let Some(text) = self
            .store
            .raft_state(name)
            .await
            .map_err(|e| read_error(&e))?
        else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| read_error(&e))
    }

    async fn set_value(&self, name: &str, value: &impl Serialize, sync: Sync) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(|e| write_error(&e))?;
        self.store
            .set_raft_state(name, &text, sync)
            .await
            .map_err(|e| write_error(&e))
    }
}

fn parse(text: &str) -> Result<Entry, Error> {
    serde_json::from_str(text).map_err(|e| read_error(&e))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, Error> {
        let from = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let until = match range.end_bound() {
            Bound::Included(&n) => n.saturating_add(1),
            Bound::Excluded(&n) => n,
            Bound::Unbounded => u64::MAX,
        };
        self.store
            .raft_log(from, until)
            .await
            .map_err(|e| read_error(&e))?
            .iter()
            .map(|text| parse(text))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, Error> {
        let purged: Option<LogId<NodeId>> = self.value(PURGED).await?;
        let last = match self
            .store
            .raft_log_last()
            .await
            .map_err(|e| read_error(&e))?
        {
            Some(text) => Some(parse(&text)?.log_id),
            None => purged,
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), Error> {
        // A vote must survive a crash, or a member could vote twice in a term.
        self.set_value(VOTE, vote, Sync::Full).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, Error> {
        self.value(VOTE).await
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), Error> {
        // A hint for the next start: a member that lost it learns it from the coordinator again.
        self.set_value(COMMITTED, &committed, Sync::Deferred).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, Error> {
        Ok(self
            .value::<Option<LogId<NodeId>>>(COMMITTED)
            .await?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let rows = entries
            .into_iter()
            .map(|entry| {
                serde_json::to_string(&entry)
                    .map(|text| (entry.log_id.index, text))
                    .map_err(|e| write_error(&e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match self.store.append_raft_log(&rows).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_error(&e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), Error> {
        self.store
            .truncate_raft_log(log_id.index)
            .await
            .map_err(|e| write_error(&e))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), Error> {
        let text = serde_json::to_string(&log_id).map_err(|e| write_error(&e))?;
        self.store
            .purge_raft_log(log_id.index, PURGED, &text)
            .await
            .map_err(|e| write_error(&e))
    }
}
