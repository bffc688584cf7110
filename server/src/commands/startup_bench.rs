//! `bench --spawn-server --startup-entries N`: how long a start takes after years of history.
//!
//! The spawned server is started once on its empty ledger and killed, and that restart is timed:
//! the **baseline** (process start, store, keys, listeners). Then a history of `N` ledger entries
//! is written into its data directory, as a busy build farm leaves it: sessions that opened, got
//! a license and ended, one after another over the past year, and `--startup-live` sessions that
//! are still running, each holding a license. The state this history folds to is stored as a
//! snapshot, as the server itself would have written at its last snapshot. The server is then
//! killed and restarted on it and the start is timed again, up to its "ready" line. The
//! background audit of the history (`engine::audit`) runs after that and is not part of a start.

use std::{
    io::Write,
    net::IpAddr,
    time::{Duration, Instant},
};

use anyhow::Context;
use models::{LicenseType, RefusalReason, SessionStatus};
use time::OffsetDateTime;

use super::spawned_server::SpawnedServer;
use crate::{
    app::SERVER_KEY_FILE,
    cli::BenchArgs,
    engine::{
        EngineConfig, HeadSigner,
        snapshot::{Body, sha256_hex},
        snapshots::save,
        state::State,
    },
    ledger::{Event, ReleasedLicense},
    licensing::keys::KeyPair,
    store::Store,
};

/// Ledger rows per transaction while the history is written.
const BATCH: usize = 20_000;

/// Histories up to this long are also started from their first entry, without the snapshot,
/// for comparison (a longer one would take minutes).
const GENESIS_UP_TO: u64 = 2_000_000;

pub async fn run(
    args: &BenchArgs,
    entries: u64,
    live: u64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut server = SpawnedServer::start(args.product_id, args.major_version, &[])?;
    let baseline = timed_restart(&mut server)?;
    writeln!(
        out,
        "start with an empty ledger (baseline): {:.3} s",
        baseline.as_secs_f64()
    )?;
    server.stop();
    let built = Instant::now();
    let (written, bytes) = write_history(args, &server, entries, live).await?;
    writeln!(
        out,
        "history written: {written} ledger entries, {live} live sessions, database {:.1} GB, in \
         {:.0} s",
        bytes as f64 / 1e9,
        built.elapsed().as_secs_f64()
    )?;
    let start = timed_restart(&mut server)?;
    let data: serde_json::Value = reqwest::get(format!(
        "http://{}/status/sessions.json?status=running&limit=1",
        server.api_addr
    ))
    .await?
    .json()
    .await?;
    writeln!(
        out,
        "start with {written} entries and {live} live sessions: {:.3} s ({:.1} × the baseline); \
         running sessions after the start: {}",
        start.as_secs_f64(),
        start.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
        data["matched"]
    )?;
    let folded = fold_time(&server).await?;
    writeln!(
        out,
        "usage history folded from those entries (in the background, after the start): {:.1} s, \
         {:.0} entries/s",
        folded.as_secs_f64(),
        written as f64 / folded.as_secs_f64().max(1e-9)
    )?;
    if written <= GENESIS_UP_TO {
        server.stop();
        let store = Store::open(&server.data_dir.join("license-server.db")).await?;
        store.forget_snapshots().await?;
        store.close().await;
        let genesis = timed_restart(&mut server)?;
        writeln!(
            out,
            "the same start without the snapshot (replaying every entry): {:.3} s ({:.1} × the \
             start from the snapshot)",
            genesis.as_secs_f64(),
            genesis.as_secs_f64() / start.as_secs_f64().max(1e-9)
        )?;
    }
    Ok(())
}

/// How long until the server has folded its whole ledger into the usage history (it starts at
/// the start; the usage report says `complete` once it is done).
async fn fold_time(server: &SpawnedServer) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let http = reqwest::Client::new();
    let token = super::usage_bench::login(&http, server).await?;
    loop {
        let report: serde_json::Value = http
            .get(format!("http://{}/server/manage/usage", server.api_addr))
            .header(models::headers::SESSION_TOKEN, &token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if report["complete"] == true {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn timed_restart(server: &mut SpawnedServer) -> anyhow::Result<Duration> {
    let started = Instant::now();
    server.restart()?;
    Ok(started.elapsed())
}

/// Appends the history to the stopped server's ledger and stores the snapshot of its state.
/// The entries written, and the database's size.
async fn write_history(
    args: &BenchArgs,
    server: &SpawnedServer,
    entries: u64,
    live: u64,
) -> anyhow::Result<(u64, u64)> {
    let db = server.data_dir.join("license-server.db");
    let store = Store::open(&db).await?;
    let keep_ended = EngineConfig::default().keep_ended;
    let mut state = State::default();
    let year = time::Duration::days(365);
    let begin = OffsetDateTime::now_utc() - year;
    let ended = entries.saturating_sub(live * 2) / 3;
    // Refusals make up the rest, so the history has exactly `entries` entries.
    let refused = entries.saturating_sub(ended * 3 + live * 2);
    let total = entries;
    let step = year / i32::try_from(total.max(1)).unwrap_or(i32::MAX);
    let mut batch = Vec::with_capacity(BATCH);
    let mut written = 0;
    let mut at = begin;
    let mut push = async |event: Event, state: &mut State| -> anyhow::Result<()> {
        at += step;
        state.apply(at, &event, keep_ended);
        batch.push(event.row(at));
        if batch.len() == BATCH {
            store.append_ledger(&batch).await?;
            written += batch.len() as u64;
            batch.clear();
        }
        Ok(())
    };
    for session in 1..=ended + live {
        let opened = Event::SessionOpened {
            session_id: session,
            host: format!("build-{:03}", session % 200),
            ip_address: IpAddr::from([10, 0, (session % 200) as u8, 7]),
            message: format!("job {session}"),
            pool: None,
            user: None,
            token_sha256: Some(sha256_hex(&session.to_le_bytes())),
            server_id: None,
        };
        push(opened, &mut state).await?;
        let granted = Event::LicenseGranted {
            session_id: session,
            license_id: session,
            request_id: format!("r{session}"),
            product_id: args.product_id,
            major_version: args.major_version,
            product: "Benchmark".into(),
            license_type: LicenseType::Runcount,
            pool: None,
        };
        push(granted, &mut state).await?;
        if session <= ended {
            let closed = Event::SessionClosed {
                session_id: session,
                status: SessionStatus::Finished,
                released: vec![ReleasedLicense {
                    license_id: session,
                    credits_used: 0,
                }],
                by: None,
            };
            push(closed, &mut state).await?;
        }
    }
    for session in 0..refused {
        let event = Event::LicenseRefused {
            session_id: session + 1,
            product_id: args.product_id,
            major_version: args.major_version,
            pool: None,
            reason: Some(RefusalReason::NoSeatFree),
        };
        push(event, &mut state).await?;
    }
    if !batch.is_empty() {
        store.append_ledger(&batch).await?;
        written += batch.len() as u64;
    }
    let (seq, hash) = store.ledger_tail().await?.context("the ledger is empty")?;
    let key = KeyPair::load(&server.data_dir.join(SERVER_KEY_FILE))?;
    let signer = HeadSigner {
        key: key.signing_key(),
        dir: server.data_dir.clone(),
    };
    // The server's own history (its license, its first administrator) is in `state` too: those
    // entries do not change the engine's state.
    save(&store, &signer, 3, Body::of(&state), seq, hash).await?;
    store.close().await;
    let bytes = std::fs::metadata(&db).map_or(0, |m| m.len());
    Ok((written, bytes))
}
