//! `bench --mass-drop N`: what grants see while the server drops `N` sessions at once.
//!
//! A rack powered off, a network cut, a restart after an outage: many sessions fall silent
//! together and are dropped by the same tick. To make that happen on purpose, the benchmark opens
//! `N` sessions that each hold a license (and never send a heartbeat), then kills the server and
//! starts it again with a short `--session-timeout`: at start every running session counts as
//! having just sent a heartbeat, so all `N` fall silent at the same moment, a few seconds later.
//! License cycles run throughout; their grant latency **before** the drop is the baseline for the
//! latency **during** it, in the same run.

use std::{io::Write, time::Duration};

use anyhow::{Context, bail};
use models::{OpenSession, RequestLicense};

use super::{
    bench::{Measurement, Workload, measure, percentile},
    spawned_server::{SEATS, SpawnedServer},
};
use crate::{cli::BenchArgs, client::LicenseClient};

/// Session timeout after the restart: the sessions drop this long after it.
const DROP_AFTER_S: u64 = 6;
/// Clients opening the sessions that will drop.
const OPENERS: usize = 64;

pub async fn run(args: &BenchArgs, sessions: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    if !args.spawn_server {
        bail!("--mass-drop restarts the server it measures: give --spawn-server");
    }
    let concurrency = args.concurrency.first().copied().unwrap_or(16).max(1);
    if sessions + 2 * concurrency > SEATS as usize {
        bail!(
            "--mass-drop takes at most {} sessions",
            SEATS as usize - 2 * concurrency
        );
    }
    let mut server = SpawnedServer::start(
        args.product_id,
        args.major_version,
        &["--session-timeout", "86400", "--heartbeat-interval", "10"],
    )?;
    writeln!(
        out,
        "license-server bench --mass-drop: opening {sessions} sessions, each holding a license"
    )?;
    open_holding(&server.license_addr, args, sessions).await?;
    server.set_options(&[
        "--session-timeout",
        &DROP_AFTER_S.to_string(),
        "--heartbeat-interval",
        "1",
    ]);
    server.restart()?;
    writeln!(
        out,
        "restarted: they all fall silent now and drop in {DROP_AFTER_S} s; license cycles at \
         concurrency {concurrency} meanwhile"
    )?;
    let before = measure(
        std::slice::from_ref(&server.license_addr),
        args,
        concurrency,
        Duration::from_secs(DROP_AFTER_S - 2),
        Workload::Cycles,
    )
    .await?;
    let during = measure(
        std::slice::from_ref(&server.license_addr),
        args,
        concurrency,
        Duration::from_secs(8),
        Workload::Cycles,
    )
    .await?;
    let running = running_sessions(&server.api_addr).await?;
    writeln!(
        out,
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>16}",
        "window", "cycles/s", "grant p50", "grant p99", "grant max", "worst second p99"
    )?;
    let mut worst = [0.0; 2];
    for (i, (name, m)) in [
        ("before the drop (baseline)", &before),
        ("during the drop", &during),
    ]
    .into_iter()
    .enumerate()
    {
        let mut grants = m.grant_latencies.clone();
        grants.sort_unstable();
        worst[i] = worst_second_p99(m);
        writeln!(
            out,
            "{name:<28} {:>10.0} {:>10.2} {:>10.2} {:>10.2} {:>16.2}",
            m.rate(m.cycles),
            percentile(&grants, 50.0),
            percentile(&grants, 99.0),
            percentile(&grants, 100.0),
            worst[i],
        )?;
    }
    writeln!(
        out,
        "worst-second grant p99, during / before: {:.2}; sessions still running after the drop: \
         {running} of {sessions}",
        worst[1] / worst[0].max(1e-9)
    )?;
    let errors = before.errors + during.errors;
    if errors > 0 {
        bail!(
            "{errors} requests failed; first: {}",
            first_error(&before, &during)
        );
    }
    if running > 0 {
        bail!("{running} sessions were not dropped");
    }
    Ok(())
}

/// The grant p99 of the worst whole second of `m`: the second of the drop, where a stall shows
/// even though it is a small share of the whole window.
fn worst_second_p99(m: &Measurement) -> f64 {
    let mut seconds: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for (&latency, &at) in m.grant_latencies.iter().zip(&m.grant_started_ms) {
        seconds.entry(at / 1000).or_default().push(latency);
    }
    seconds
        .into_values()
        .map(|mut second| {
            second.sort_unstable();
            percentile(&second, 99.0)
        })
        .fold(0.0, f64::max)
}

fn first_error(a: &Measurement, b: &Measurement) -> String {
    a.first_error
        .clone()
        .or_else(|| b.first_error.clone())
        .unwrap_or_default()
}

/// Opens `sessions` sessions that each take a license and then fall silent.
async fn open_holding(server: &str, args: &BenchArgs, sessions: usize) -> anyhow::Result<()> {
    let mut openers = tokio::task::JoinSet::new();
    for opener in 0..OPENERS {
        let count = sessions / OPENERS + usize::from(opener < sessions % OPENERS);
        let mut client = LicenseClient::new(vec![server.to_owned()])?;
        let request = RequestLicense {
            request_id: "hold".into(),
            product_id: args.product_id,
            major_version: args.major_version,
            request_type: args.license_type.into(),
            wait_s: Some(0),
        };
        openers.spawn(async move {
            for _ in 0..count {
                let session = client
                    .open_session(&OpenSession {
                        host: format!("rack-{opener}"),
                        message: "bench --mass-drop".into(),
                        pool: None,
                        user: None,
                    })
                    .await?;
                client.request_license(&session, &request).await?;
            }
            Ok::<_, crate::client::ClientError>(())
        });
    }
    while let Some(opened) = openers.join_next().await {
        opened
            .context("an opener failed")?
            .context("cannot open the sessions to drop")?;
    }
    Ok(())
}

/// Running sessions, as the status data counts them.
async fn running_sessions(api_addr: &str) -> anyhow::Result<u64> {
    let page: serde_json::Value = reqwest::get(format!(
        "http://{api_addr}/status/sessions.json?status=running&limit=1"
    ))
    .await?
    .error_for_status()?
    .json()
    .await?;
    page["matched"]
        .as_u64()
        .context("sessions.json has no `matched`")
}
