//! Archived history: ledger entries older than the retention window leave the hot database for
//! immutable, gzip-compressed segment files in the data directory's `ledger-archive/`, so the
//! store stays small however long the server runs, and the chain still links end to end.
//!
//! **A segment** is up to [`SEGMENT_ROWS`] consecutive entries, one JSON array per line
//! (`[seq, at, kind, body, prev_hash, hash]`, the row's text exactly as hashed), gzip-compressed.
//! Its row in `ledger_segments` names its first and last entry, the `prev_hash` of the first and
//! the `hash` of the last (the links into the chain on both sides), the file and its SHA-256.
//!
//! The files are [`super::segment`]'s. **Archiving** ([`archive_step`]) takes the oldest entries that are older than the window, and
//! never one the oldest kept snapshot covers or anything after it (a start, a recovery and the
//! signed head only ever need entries in the database). It checks their chain, writes the file
//! (synced, renamed into place), records the segment, and only then removes the entries from the
//! table, a few thousand per transaction. A crash at any point leaves every entry in the table,
//! in a segment, or briefly in both (the leftovers go at the next step); never in neither.
//!
//! **Reading** ([`super::verify::Walk`]) goes through the segments, then the table, checking
//! every entry against the one before as always: an edited entry in a segment is named like one
//! in the table; a segment whose file is missing, damaged or changed is reported, never skipped.

use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

pub use super::segment::ARCHIVE_DIR;
use super::{
    chain::GENESIS_HASH,
    segment::{archive_dir, encode},
    verify::check_row,
};
use crate::{
    store::{SegmentRow, Store},
    sys::{
        atomic_file::{self, Mode},
        hex,
        timestamp::parse_rfc3339,
    },
};

/// Most entries in one segment.
pub const SEGMENT_ROWS: u32 = 100_000;
/// Entries removed from the table per transaction.
const REMOVE_PER_TRANSACTION: u32 = 5_000;
/// How often the archiver looks for entries to archive.
const LOOK_EVERY: Duration = Duration::from_secs(600);

/// Archives segment after segment while there are entries older than `after`, then every
/// [`LOOK_EVERY`], until `shutdown`.
pub async fn run(store: Store, after: Duration, shutdown: CancellationToken) {
    loop {
        loop {
            let older_than = OffsetDateTime::now_utc() - after;
            match archive_step(&store, older_than, SEGMENT_ROWS).await {
                Ok(Some(segment)) => tracing::info!(
                    first = segment.first_seq,
                    last = segment.last_seq,
                    file = %segment.file,
                    "ledger entries archived"
                ),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "cannot archive ledger entries; will try again"
                    );
                    break;
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// Archives the next segment of at most `limit` entries older than `older_than`: see the
/// module's documentation. `None` when there is nothing to archive.
pub async fn archive_step(
    store: &Store,
    older_than: OffsetDateTime,
    limit: u32,
) -> anyhow::Result<Option<SegmentRow>> {
    let segments = store.ledger_segments().await?;
    let (archived, prev) = segments.last().map_or((0, GENESIS_HASH.to_owned()), |s| {
        (s.last_seq, s.last_hash.clone())
    });
    remove_archived(store, archived).await?;
    let Some(oldest_snapshot) = store.snapshots().await?.iter().map(|s| s.seq).min() else {
        return Ok(None);
    };
    let mut rows = Vec::new();
    for row in store.ledger_rows(archived, limit).await? {
        let at = parse_rfc3339(&row.at).map_err(|e| anyhow::anyhow!("entry {}: {e}", row.seq))?;
        if row.seq >= oldest_snapshot || at >= older_than {
            break;
        }
        rows.push(row);
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(None);
    };
    // Never archive what does not check out: the archive must be as good as the table.
    let mut link = prev.clone();
    for (row, seq) in rows.iter().zip(first.seq..) {
        check_row(row, seq, &link)?;
        link.clone_from(&row.hash);
    }
    let file = format!("entries-{:012}-{:012}.jsonl.gz", first.seq, last.seq);
    let bytes = encode(&rows)?;
    let segment = SegmentRow {
        first_seq: first.seq,
        last_seq: last.seq,
        first_prev_hash: prev,
        last_hash: last.hash.clone(),
        sha256: hex::lower(&Sha256::digest(&bytes)),
        file,
    };
    let dir = archive_dir(store);
    let path = dir.join(&segment.file);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        atomic_file::replace(&path, &bytes, Mode::Private)
    })
    .await?
    .context("cannot write the archive segment")?;
    store.add_ledger_segment(&segment).await?;
    remove_archived(store, segment.last_seq).await?;
    Ok(Some(segment))
}

/// Removes the table's entries up to `upto`, which are in segments, a few thousand at a time.
async fn remove_archived(store: &Store, upto: u64) -> anyhow::Result<()> {
    while store
        .remove_archived_rows(upto, REMOVE_PER_TRANSACTION)
        .await?
        > 0
    {
        tokio::task::yield_now().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use flate2::{Compression, read::GzDecoder, write::GzEncoder};

    use super::*;
    use crate::{
        cli::{DataDirArg, ExportFormat},
        ledger::{Event, export::Filter, verify},
        store::SnapshotRow,
    };

    const DAY: time::Duration = time::Duration::days(1);

    /// A data directory whose ledger has 250 entries, one a second: 200 of them 100 days old,
    /// 50 of today; and a snapshot at entry 240.
    async fn ledger() -> (tempfile::TempDir, Store, OffsetDateTime) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("license-server.db"))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let old = now - 100 * DAY;
        let rows: Vec<_> = (1..=250i64)
            .map(|i| {
                let base = if i <= 200 { old } else { now };
                Event::sample(i as u64).row(base + time::Duration::seconds(i))
            })
            .collect();
        store.append_ledger(&rows).await.unwrap();
        let snapshot = SnapshotRow {
            seq: 240,
            hash: store.ledger_hash(240).await.unwrap().unwrap(),
            taken_at: String::new(),
            format: 1,
            body: Vec::new(),
            body_sha256: String::new(),
            head: String::new(),
        };
        store.save_snapshot(&snapshot, 3).await.unwrap();
        (dir, store, now)
    }

    async fn table_rows(store: &Store) -> Vec<u64> {
        store
            .ledger_rows(0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    }

    fn rewrite_segment(store: &Store, file: &str, edit: impl Fn(String) -> String, level: u32) {
        let path = archive_dir(store).join(file);
        let mut text = String::new();
        GzDecoder::new(std::fs::read(&path).unwrap().as_slice())
            .read_to_string(&mut text)
            .unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Compression::new(level));
        gz.write_all(edit(text).as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn old_entries_move_into_segments_and_the_chain_still_verifies_end_to_end() {
        let (dir, store, now) = ledger().await;
        let cutoff = now - 90 * DAY;
        let first = archive_step(&store, cutoff, 120).await.unwrap().unwrap();
        assert_eq!((first.first_seq, first.last_seq), (1, 120));
        let second = archive_step(&store, cutoff, 120).await.unwrap().unwrap();
        assert_eq!((second.first_seq, second.last_seq), (121, 200));
        assert_eq!(archive_step(&store, cutoff, 120).await.unwrap(), None);
        assert_eq!(table_rows(&store).await, (201..=250).collect::<Vec<_>>());

        let mut seen = Vec::new();
        let summary = verify(&store, |e| seen.push(e.seq)).await.unwrap();
        assert_eq!(summary.entries, 250);
        assert_eq!(seen, (1..=250).collect::<Vec<_>>());

        // An export range across the boundary of the two segments, and one across the boundary
        // between the archive and the table.
        for (from, to) in [(120, 121), (200, 201)] {
            let at = |seq: i64| {
                let base = if seq <= 200 { now - 100 * DAY } else { now };
                base + time::Duration::seconds(seq)
            };
            let mut out = Vec::new();
            crate::commands::ledger::export(
                ExportFormat::Jsonl,
                Filter {
                    since: Some(at(from)),
                    until: Some(at(to) + time::Duration::milliseconds(1)),
                    kinds: Vec::new(),
                },
                None,
                &DataDirArg {
                    data_dir: dir.path().to_owned(),
                },
                &mut out,
            )
            .await
            .unwrap();
            let seqs: Vec<i64> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                        .as_i64()
                        .unwrap()
                })
                .collect();
            assert_eq!(seqs, [from, to]);
        }
    }

    #[tokio::test]
    async fn a_crash_between_recording_a_segment_and_removing_its_entries_loses_nothing() {
        let (_dir, store, now) = ledger().await;
        // What a crash leaves: segment 1..=100 written and recorded, its entries still in the
        // table.
        let rows = store.ledger_rows(0, 100).await.unwrap();
        let bytes = encode(&rows).unwrap();
        std::fs::create_dir_all(archive_dir(&store)).unwrap();
        let file = "entries-000000000001-000000000100.jsonl.gz";
        std::fs::write(archive_dir(&store).join(file), &bytes).unwrap();
        store
            .add_ledger_segment(&SegmentRow {
                first_seq: 1,
                last_seq: 100,
                first_prev_hash: GENESIS_HASH.to_owned(),
                last_hash: rows[99].hash.clone(),
                file: file.to_owned(),
                sha256: hex::lower(&Sha256::digest(&bytes)),
            })
            .await
            .unwrap();
        let mut seen = Vec::new();
        verify(&store, |e| seen.push(e.seq)).await.unwrap();
        assert_eq!(seen, (1..=250).collect::<Vec<_>>(), "each entry once");
        // The next step removes the leftovers, and archives everything old up to the oldest
        // snapshot's entry, which stays in the table (everything is old by this cutoff).
        let segment = archive_step(&store, now + DAY, 1000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((segment.first_seq, segment.last_seq), (101, 239));
        assert_eq!(table_rows(&store).await, (240..=250).collect::<Vec<_>>());
        let mut seen = Vec::new();
        verify(&store, |e| seen.push(e.seq)).await.unwrap();
        assert_eq!(seen, (1..=250).collect::<Vec<_>>());
        assert_eq!(archive_step(&store, now + DAY, 1000).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_edited_missing_or_changed_segment_is_reported_and_never_skipped() {
        let (_dir, store, now) = ledger().await;
        let segment = archive_step(&store, now - 90 * DAY, 1000)
            .await
            .unwrap()
            .unwrap();
        let error = |e: anyhow::Error| format!("{e:#}");

        rewrite_segment(
            &store,
            &segment.file,
            |t| t.replacen("\\\"session_id\\\":50", "\\\"session_id\\\":51", 1),
            6,
        );
        let edited = error(verify(&store, |_| {}).await.unwrap_err());
        assert!(
            edited.contains("ledger entry 50 is not valid") && edited.contains("edited"),
            "{edited}"
        );

        rewrite_segment(
            &store,
            &segment.file,
            |t| t.replacen("\\\"session_id\\\":51", "\\\"session_id\\\":50", 1),
            1,
        );
        let changed = error(verify(&store, |_| {}).await.unwrap_err());
        assert!(
            changed.contains("was changed after it was archived"),
            "{changed}"
        );

        std::fs::remove_file(archive_dir(&store).join(&segment.file)).unwrap();
        let missing = error(verify(&store, |_| {}).await.unwrap_err());
        assert!(
            missing.contains("ledger entries 1 to 200") && missing.contains("is missing"),
            "{missing}"
        );
    }

    #[tokio::test]
    async fn a_hash_is_found_in_the_segment_that_holds_its_entry_or_in_the_table() {
        let (_dir, store, now) = ledger().await;
        let before: Vec<String> = store
            .ledger_rows(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.hash)
            .collect();
        archive_step(&store, now - 90 * DAY, 120)
            .await
            .unwrap()
            .unwrap();
        // The first, a middle and the last entry of the segment, then the table's.
        for seq in [1u64, 60, 120, 121, 250] {
            let hash = crate::ledger::segment::hash_at(&store, seq).await.unwrap();
            assert_eq!(
                hash.as_deref(),
                Some(before[seq as usize - 1].as_str()),
                "{seq}"
            );
        }
        assert_eq!(
            crate::ledger::segment::hash_at(&store, 251).await.unwrap(),
            None
        );
    }
}
