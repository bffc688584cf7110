//! Reading the ledger back: every row in order, each checked against the one before, decoded into
//! an [`Entry`]. The server replays it at start; `ledger verify` and `ledger export` read it too.

use std::collections::VecDeque;

use time::OffsetDateTime;

use super::{
    chain::{GENESIS_HASH, chain_hash},
    error::LedgerError,
    event::Event,
    segment::{archive_dir, read_segment},
};
use crate::{
    store::{LedgerRow, SegmentRow, Store},
    sys::timestamp::parse_rfc3339,
};

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
    each: impl FnMut(&Entry),
) -> Result<VerifySummary, anyhow::Error> {
    verify_from(store, 0, GENESIS_HASH, each).await
}

/// Like [`verify`], for the entries after entry `after`, whose hash is `prev` (a snapshot's).
pub async fn verify_from(
    store: &Store,
    after: u64,
    prev: &str,
    mut each: impl FnMut(&Entry),
) -> Result<VerifySummary, anyhow::Error> {
    let mut walk = Walk::after(store, after, prev);
    while let Some(entries) = walk.next_batch().await? {
        entries.iter().for_each(&mut each);
    }
    Ok(walk.summary())
}

/// The ledger read in order, a batch at a time, each entry checked against the one before:
/// first the archived segments (`super::archive`), then the table. For callers that do something
/// asynchronous between batches (an export streamed over HTTP).
#[derive(Debug)]
pub struct Walk<'a> {
    store: &'a Store,
    prev: String,
    next: u64,
    /// The segments still to read, once looked up (at the first batch).
    segments: Option<VecDeque<SegmentRow>>,
}

impl<'a> Walk<'a> {
    pub fn from_genesis(store: &'a Store) -> Self {
        Self::after(store, 0, GENESIS_HASH)
    }

    /// From the entry after `after`, whose hash is `prev`.
    pub fn after(store: &'a Store, after: u64, prev: &str) -> Self {
        Self {
            store,
            prev: prev.to_owned(),
            next: after + 1,
            segments: None,
        }
    }

    /// The next entries, checked; `None` at the end. An error names the first bad entry, or the
    /// archive segment that is missing or was changed.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Entry>>, anyhow::Error> {
        if self.segments.is_none() {
            let next = self.next;
            let segments = self.store.ledger_segments().await?;
            self.segments = Some(
                segments
                    .into_iter()
                    .filter(|s| s.last_seq >= next)
                    .collect(),
            );
        }
        if let Some(segment) = self.segments.as_mut().and_then(VecDeque::pop_front) {
            return self.segment(segment).await.map(Some);
        }
        let rows = self.store.ledger_rows(self.next - 1, 10_000).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            entries.push(self.check(&row)?);
        }
        Ok(Some(entries))
    }

    fn check(&mut self, row: &LedgerRow) -> Result<Entry, LedgerError> {
        let entry = check_row(row, self.next, &self.prev)?;
        self.prev.clone_from(&row.hash);
        self.next += 1;
        Ok(entry)
    }

    async fn segment(&mut self, segment: SegmentRow) -> Result<Vec<Entry>, anyhow::Error> {
        let dir = archive_dir(self.store);
        let (read, segment) =
            tokio::task::spawn_blocking(move || read_segment(&dir, &segment).map(|r| (r, segment)))
                .await??;
        let mut entries = Vec::with_capacity(read.rows.len());
        let first = self.next;
        for row in read.rows.iter().filter(|row| row.seq >= first) {
            entries.push(self.check(row)?);
        }
        if self.next != segment.last_seq + 1 || self.prev != segment.last_hash {
            anyhow::bail!(
                "{} does not hold the entries it was archived with",
                read.name
            );
        }
        if !read.unchanged {
            anyhow::bail!(
                "{} was changed after it was archived (its SHA-256 does not match)",
                read.name
            );
        }
        Ok(entries)
    }

    /// How many entries were read, and the last one's hash.
    pub fn summary(&self) -> VerifySummary {
        VerifySummary {
            entries: self.next - 1,
            last_hash: self.prev.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    pub entries: u64,
    pub last_hash: String,
}

/// One row, checked against the sequence number and hash it must follow, and decoded.
pub fn check_row(row: &LedgerRow, expected_seq: u64, prev: &str) -> Result<Entry, LedgerError> {
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
    let at = parse_rfc3339(&row.at)
        .map_err(|e| broken(format!("its time {:?} is not RFC 3339: {e}", row.at)))?;
    Ok(Entry {
        seq: row.seq,
        at,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(session_id: u64) -> Event {
        Event::sample(session_id)
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
