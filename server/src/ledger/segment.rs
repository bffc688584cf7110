//! The segment files of the archived ledger history (see [`super::archive`]): where they live,
//! how entries are written into one, and how they are read back.
//!
//! A segment is consecutive ledger rows, one JSON array per line (`[seq, at, kind, body,
//! prev_hash, hash]`, the row's text exactly as hashed), gzip-compressed, in the data directory's
//! [`ARCHIVE_DIR`]. Its SHA-256 is in the segment's row in the store.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use sha2::{Digest, Sha256};

use crate::{
    store::{LedgerRow, RowTuple, SegmentRow, Store},
    sys::hex,
};

/// The archive's folder in the data directory.
pub const ARCHIVE_DIR: &str = "ledger-archive";
/// The archive directory of the data directory `store` lives in.
pub fn archive_dir(store: &Store) -> PathBuf {
    store.dir().join(ARCHIVE_DIR)
}

pub(super) fn encode(rows: &[LedgerRow]) -> anyhow::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for row in rows {
        serde_json::to_writer(
            &mut gz,
            &(
                row.seq,
                &row.at,
                &row.kind,
                &row.body,
                &row.prev_hash,
                &row.hash,
            ),
        )?;
        gz.write_all(b"\n")?;
    }
    Ok(gz.finish()?)
}

/// A segment read back: its entries, not yet checked against each other (the caller walks the
/// chain, so an edited entry is named like one in the table), and whether the file is still the
/// one written (its SHA-256), for what the chain cannot tell.
#[derive(Debug)]
pub struct ReadSegment {
    pub rows: Vec<LedgerRow>,
    pub unchanged: bool,
    /// How to name the segment in an error.
    pub name: String,
}

/// The entries of `segment`, read from `dir`. A missing or unreadable file is an error that
/// names it.
pub fn read_segment(dir: &Path, segment: &SegmentRow) -> anyhow::Result<ReadSegment> {
    let path = dir.join(&segment.file);
    let name = format!(
        "the archive segment {} (ledger entries {} to {})",
        path.display(),
        segment.first_seq,
        segment.last_seq
    );
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{name} is missing"),
        Err(e) => bail!("{name} cannot be read: {e}"),
    };
    let mut text = String::new();
    GzDecoder::new(bytes.as_slice())
        .read_to_string(&mut text)
        .with_context(|| format!("{name} is damaged"))?;
    let mut rows = Vec::new();
    for line in text.lines() {
        let row: RowTuple =
            serde_json::from_str(line).with_context(|| format!("{name} is damaged"))?;
        rows.push(row.into());
    }
    Ok(ReadSegment {
        rows,
        unchanged: hex::lower(&Sha256::digest(&bytes)) == segment.sha256,
        name,
    })
}

/// The hash of ledger entry `seq`, in the store or in the archive segment that holds it; `None`
/// if neither does.
pub async fn hash_at(store: &Store, seq: u64) -> anyhow::Result<Option<String>> {
    if let Some(hash) = store.ledger_hash(seq).await? {
        return Ok(Some(hash));
    }
    let segments = store.ledger_segments().await?;
    let Some(segment) = segments
        .into_iter()
        .find(|s| (s.first_seq..=s.last_seq).contains(&seq))
    else {
        return Ok(None);
    };
    if segment.last_seq == seq {
        return Ok(Some(segment.last_hash));
    }
    let dir = archive_dir(store);
    let read = tokio::task::spawn_blocking(move || read_segment(&dir, &segment)).await??;
    Ok(read.rows.into_iter().find(|r| r.seq == seq).map(|r| r.hash))
}
