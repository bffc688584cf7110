//! `license-server ledger verify | export`.

use std::{io::Write, path::Path};

use anyhow::Context;

use super::inputs::open_store;
use crate::{
    app::SERVER_KEY_FILE,
    cli::{DataDirArg, ExportFormat},
    engine::snapshot::newest_head,
    ledger::{
        self,
        export::{Export, Filter, Format},
        head,
    },
    licensing::keys::KeyPair,
    store::Store,
    sys::{
        atomic_file::{Mode, Staged},
        data_dir::DataDir,
    },
};

/// Walks the whole chain from genesis (with progress on a terminal), then checks it against the
/// server's signed heads and its snapshots: see `ledger::head`.
pub async fn verify(data_dir: &DataDirArg, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = DataDir::open(&data_dir.data_dir)?;
    let store = open_store(data_dir).await?;
    let checked = verify_store(&store, dir.path(), out).await;
    store.close().await;
    checked
}

pub(super) async fn verify_store(
    store: &Store,
    dir: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let total = store.ledger_tail().await?.map_or(0, |(seq, _)| seq);
    let mut progress = Progress::new(total);
    let summary = ledger::verify(store, |entry| progress.at(entry.seq)).await;
    progress.done();
    let summary = summary?;
    writeln!(
        out,
        "ledger verified: {} entries, chain intact; last hash {}",
        summary.entries, summary.last_hash
    )?;
    let segments = store.ledger_segments().await?;
    if let (Some(first), Some(last)) = (segments.first(), segments.last()) {
        writeln!(
            out,
            "archived: entries {} to {} in {} segments ({})",
            first.first_seq,
            last.last_seq,
            segments.len(),
            ledger::archive::ARCHIVE_DIR
        )?;
    }
    let key_file = dir.join(SERVER_KEY_FILE);
    if !key_file.exists() {
        writeln!(
            out,
            "no signed head: this data directory's server never ran"
        )?;
        return Ok(());
    }
    let key = KeyPair::load(&key_file)?.public_key();
    let snapshots = store.snapshots().await?;
    let (newest, unusable) = newest_head(dir, &key, &snapshots)?;
    for (seq, e) in unusable {
        writeln!(
            out,
            "warning: the snapshot at entry {seq} cannot be used: {e:#}"
        )?;
    }
    match newest {
        Some(head) => {
            head::check(store, &head).await?;
            writeln!(
                out,
                "signed head: entry {} ({}, signed {}); the ledger passes through it",
                head.seq,
                if head.stopped {
                    "the server stopped cleanly there"
                } else {
                    "the server was running"
                },
                head.signed_at
            )?;
        }
        None => match store.ledger_tail().await? {
            Some((entries, _)) => writeln!(
                out,
                "warning: no signed head found although the ledger has {entries} entries: a \
                 data directory of a version before signed heads, or the heads were removed; \
                 whether it was cut short or rewritten cannot be told here (the heads anchored \
                 at the vendor still tell)"
            )?,
            None => writeln!(out, "no signed head found")?,
        },
    }
    let seqs: Vec<String> = snapshots.iter().map(|s| s.seq.to_string()).collect();
    writeln!(
        out,
        "snapshots: {}",
        if seqs.is_empty() {
            "none".to_owned()
        } else {
            format!("at entries {}", seqs.join(", "))
        }
    )?;
    Ok(())
}

/// "verified N of M entries" on standard error, when it is a terminal, a few times a second.
struct Progress {
    total: u64,
    shown: Option<std::time::Instant>,
}

impl Progress {
    fn new(total: u64) -> Self {
        use std::io::IsTerminal;
        Self {
            total,
            shown: std::io::stderr()
                .is_terminal()
                .then(std::time::Instant::now),
        }
    }

    fn at(&mut self, seq: u64) {
        if let Some(shown) = self.shown
            && shown.elapsed().as_millis() >= 200
        {
            let percent = seq * 100 / self.total.max(1);
            eprint!(
                "\rverifying the ledger: {seq} of {} entries ({percent}%)",
                self.total
            );
            self.shown = Some(std::time::Instant::now());
        }
    }

    fn done(&self) {
        if self.shown.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

/// Streams the export to `target` (replaced only once complete) or `out`, checking every entry
/// on the way; a broken chain stops it with the error naming the entry.
pub async fn export(
    format: ExportFormat,
    filter: Filter,
    target: Option<&Path>,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let format = match format {
        ExportFormat::Csv => Format::Csv,
        ExportFormat::Jsonl => Format::Jsonl,
    };
    let written = match target {
        Some(path) => {
            let mut file = Staged::create(path, Mode::Private)
                .with_context(|| format!("cannot write {}", path.display()))?;
            match stream(Export::new(&store, format, filter), &mut file).await {
                Ok(()) => file
                    .commit()
                    .with_context(|| format!("cannot write {}", path.display())),
                Err(e) => Err(e),
            }
        }
        None => stream(Export::new(&store, format, filter), out).await,
    };
    store.close().await;
    written
}

async fn stream(mut export: Export<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    while let Some(chunk) = export.next_chunk().await? {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(())
}
