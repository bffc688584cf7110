//! The entries this server reported to its vendor, kept in the data directory's
//! [`REPORTED_FILE`] so that each report can link to them (see the room's documentation).
//!
//! Losing the file loses nothing but links: an online report is asked for the one the vendor
//! needs, and an offline request without it is recorded by the vendor as not checked.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    sys::atomic_file::{self, Mode},
};

pub const REPORTED_FILE: &str = "ledger-reported.json";

/// How many of the newest reported entries are kept (a report links to each).
pub const KEEP: usize = 32;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Reported {
    /// Entry numbers, oldest first.
    entries: Vec<u64>,
}

/// The entries reported, oldest first; none if the file is missing or unreadable.
pub fn read(dir: &Path) -> Vec<u64> {
    let path = dir.join(REPORTED_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    match serde_json::from_str::<Reported>(&text) {
        Ok(reported) => reported.entries,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "the list of reported ledger entries is unreadable; starting a new one");
            Vec::new()
        }
    }
}

/// Adds `seq` to the entries reported, keeping the newest [`KEEP`].
pub fn remember(dir: &Path, seq: u64) -> std::io::Result<()> {
    let mut entries = read(dir);
    if entries.contains(&seq) {
        return Ok(());
    }
    entries.push(seq);
    entries.sort_unstable();
    let cut = entries.len().saturating_sub(KEEP);
    entries.drain(..cut);
    let text = serde_json::to_string(&Reported { entries })
        .unwrap_or_else(|e| unreachable!("a list of numbers always serialises: {e}"));
    atomic_file::replace(&dir.join(REPORTED_FILE), text.as_bytes(), Mode::Private)
}

/// [`remember`] in the data directory of `state`.
pub async fn remember_in(state: &AppState, seq: u64) -> anyhow::Result<()> {
    let dir = state.store.dir().to_owned();
    tokio::task::spawn_blocking(move || remember(&dir, seq))
        .await?
        .context("cannot keep the list of reported ledger entries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_entries_are_kept_once_each_and_a_damaged_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_empty());
        for seq in (1..=40).rev().chain([40, 7]) {
            remember(dir.path(), seq).unwrap();
        }
        let kept = read(dir.path());
        assert_eq!(kept, (9..=40).collect::<Vec<_>>());
        std::fs::write(dir.path().join(REPORTED_FILE), "{garbage").unwrap();
        assert!(read(dir.path()).is_empty());
        remember(dir.path(), 3).unwrap();
        assert_eq!(read(dir.path()), [3]);
    }
}
