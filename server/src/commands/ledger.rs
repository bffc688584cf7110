//! `license-server ledger verify | export`.

use std::{io::Write, path::Path};

use anyhow::Context;

use super::inputs::open_store;
use crate::{
    app::SERVER_KEY_FILE,
    cli::{DataDirArg, ExportFormat},
    engine::snapshot::snapshot_head,
    ledger::{
        self,
        export::Csv,
        head::{self, SignedHead},
    },
    licensing::keys::KeyPair,
    store::Store,
    sys::{
        atomic_file::{self, Mode},
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

async fn verify_store(store: &Store, dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
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
    let key_file = dir.join(SERVER_KEY_FILE);
    if !key_file.exists() {
        writeln!(
            out,
            "no signed head: this data directory's server never ran"
        )?;
        return Ok(());
    }
    let key = KeyPair::load(&key_file)?.public_key();
    let mut newest = head::read_file(dir, &key)?;
    let snapshots = store.snapshots().await?;
    for meta in &snapshots {
        match snapshot_head(meta, &key) {
            Ok(head) => newest = SignedHead::newest(newest, Some(head)),
            Err(e) => writeln!(
                out,
                "warning: the snapshot at entry {} cannot be used: {e:#}",
                meta.seq
            )?,
        }
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
        None => writeln!(out, "no signed head found")?,
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

pub async fn export(
    format: ExportFormat,
    target: Option<&Path>,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let mut text = Vec::new();
    if format == ExportFormat::Csv {
        writeln!(text, "{}", Csv::header().join(","))?;
    }
    let mut csv = Csv::default();
    let mut failure = None;
    let verified = ledger::verify(&store, |entry| {
        if failure.is_some() {
            return;
        }
        let written = match format {
            ExportFormat::Jsonl => {
                serde_json::to_writer(&mut text, &ledger::export::json_line(entry))
                    .map_err(anyhow::Error::from)
                    .and_then(|()| writeln!(text).map_err(anyhow::Error::from))
            }
            ExportFormat::Csv => csv
                .rows(entry)
                .into_iter()
                .try_for_each(|row| writeln!(text, "{}", row.join(",")))
                .map_err(anyhow::Error::from),
        };
        if let Err(e) = written {
            failure = Some(e);
        }
    })
    .await;
    store.close().await;
    verified?;
    if let Some(e) = failure {
        return Err(e);
    }
    match target {
        Some(path) => atomic_file::replace(path, &text, Mode::Private)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => out.write_all(&text)?,
    }
    Ok(())
}
