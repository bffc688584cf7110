//! `license-vendor ledger-heads`: the ledger heads the license servers reported, and any server
//! whose history was rewritten; and `issue --vendor-data-dir`, which records the head an offline
//! activation request carries.

use std::{io::Write, path::Path};

use anyhow::{Context, bail};
use models::HeadVerdict;

use super::inputs::read_input;
use crate::{
    licensing::{activation, anchors, ledger_report::Usage},
    store::{HeadDecision, HeadOutcome, KeyCheck, LedgerServerRow, VendorStore},
};

/// The vendor service's store in `data_dir`, which must exist (the service made it).
async fn open(data_dir: &Path) -> anyhow::Result<VendorStore> {
    let path = data_dir.join(VendorStore::FILE);
    if !path.exists() {
        bail!(
            "{} holds no vendor database ({}); give the licensing service's --data-dir",
            data_dir.display(),
            VendorStore::FILE
        );
    }
    Ok(VendorStore::open(&path).await?)
}

fn status(server: &LedgerServerRow) -> String {
    match &server.finding {
        Some((finding, at)) => format!("CHANGED (found {at}): {finding}"),
        None => format!("ok ({})", server.last_verdict),
    }
}

/// Lists every server with its newest head and status; with `server_id`, that server's heads
/// and the usage its newest head reported.
pub async fn list(
    data_dir: &Path,
    server_id: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let store = open(data_dir).await?;
    let servers = store.ledger_servers().await?;
    let Some(wanted) = server_id else {
        if servers.is_empty() {
            writeln!(out, "no server has reported a ledger head yet")?;
        }
        for server in &servers {
            writeln!(
                out,
                "{}  entry {}  reported {}  {}",
                server.server_id,
                server.last.seq,
                server.last.received,
                status(server)
            )?;
        }
        store.close().await;
        return Ok(());
    };
    let server = servers
        .iter()
        .find(|s| s.server_id == wanted)
        .with_context(|| format!("no server {wanted} has reported a ledger head"))?;
    writeln!(
        out,
        "server {}\n  first seen {}\n  status: {}\n  heads (oldest first):",
        server.server_id,
        server.first_seen,
        status(server)
    )?;
    for head in store.ledger_heads(wanted).await? {
        writeln!(
            out,
            "    {}  entry {}  {}  via {}: {}",
            head.head.received, head.head.seq, head.verdict, head.via, head.detail
        )?;
    }
    let usage: Vec<Usage> = serde_json::from_str(&server.last_usage).unwrap_or_default();
    writeln!(out, "  usage up to entry {}:", server.last.seq)?;
    for u in usage {
        writeln!(
            out,
            "    pool {}  product {} v{}  runcount grants {}  credit grants {}  credits used {}  \
             refused {}  in use {}",
            u.pool.as_deref().unwrap_or("(default)"),
            u.product_id,
            u.major_version,
            u.runcount_grants,
            u.credit_grants,
            u.used_credits,
            u.refused,
            u.runcount_in_use
        )?;
    }
    store.close().await;
    Ok(())
}

/// Records the ledger head the offline activation request `request` carries in the vendor
/// service's store in `data_dir`, and says what it found. A finding is an error only in what it
/// says: the license is the vendor's to issue or not.
pub async fn record_request(
    request: &Path,
    data_dir: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<Option<HeadVerdict>> {
    let bytes = read_input(request)?;
    let (request_doc, signer) =
        activation::verify(&bytes).with_context(|| format!("{} is refused", request.display()))?;
    let Some(ledger) = &request_doc.ledger else {
        writeln!(
            out,
            "{} carries no ledger head (a server with an empty ledger, or an earlier version): \
             nothing recorded",
            request.display()
        )?;
        return Ok(None);
    };
    ledger
        .check()
        .map_err(|why| anyhow::anyhow!("the request's ledger head is refused: {why}"))?;
    let store = open(data_dir).await?;
    let members = request_doc.members();
    if !members.is_empty() {
        store
            .record_network(&request_doc.server_id, &members)
            .await?;
    }
    let outcome = anchors::record(
        &store,
        request_doc.head_owner(&signer),
        &signer,
        ledger,
        "offline",
        KeyCheck::Adopt,
    )
    .await?;
    store.close().await;
    let HeadOutcome::Decided(HeadDecision::Record { verdict, detail }) = outcome else {
        bail!("the ledger head was not recorded: {outcome:?}");
    };
    let loud = if verdict.is_tampering() {
        "WARNING: "
    } else {
        ""
    };
    writeln!(
        out,
        "{loud}ledger head of server {} (entry {}): {}: {detail}",
        request_doc.server_id,
        ledger.seq,
        verdict.as_str()
    )?;
    Ok(Some(verdict))
}
