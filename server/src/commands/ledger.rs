//! `license-server ledger verify | export`.

use std::{io::Write, path::Path};

use anyhow::Context;

use super::inputs::open_store;
use crate::{
    cli::{DataDirArg, ExportFormat},
    ledger::{self, export::Csv},
    sys::atomic_file::{self, Mode},
};

pub async fn verify(data_dir: &DataDirArg, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let summary = ledger::verify(&store, |_| {}).await;
    store.close().await;
    let summary = summary?;
    writeln!(
        out,
        "ledger verified: {} entries, chain intact; last hash {}",
        summary.entries, summary.last_hash
    )?;
    Ok(())
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
