//! `license-server bench`: a load generator in the product, like `pgbench` or `redis-benchmark`.
//!
//! Machines differ and are noisy, so a number alone means little. Each measurement therefore
//! runs twice at the same concurrency, one after the other: a **baseline** of the cheapest
//! request the license port answers (`GET /health`, no lock, no disk), then **full license
//! cycles** (open a session, get a license, release it, close: four requests, three of them
//! durable writes). The ratio of the two request rates says how close licensing gets to the
//! server's bare HTTP speed on this machine, today.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use models::{OpenSession, RequestLicense};

use super::spawned_server::SpawnedServer;
use crate::{cli::BenchArgs, client::LicenseClient};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Workload {
    Baseline,
    Cycles,
}

#[derive(Debug, Default)]
pub(super) struct Measurement {
    pub(super) requests: u64,
    pub(super) cycles: u64,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    /// Every request's latency, in microseconds.
    pub(super) latencies: Vec<u32>,
    /// The license requests' alone.
    pub(super) grant_latencies: Vec<u32>,
    /// When each license request started, in milliseconds since the measurement began.
    pub(super) grant_started_ms: Vec<u32>,
    pub(super) elapsed: Duration,
}

impl Measurement {
    pub(super) fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

pub(super) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

pub async fn run(args: BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(members) = args.spawn_network {
        let members = usize::try_from(members).unwrap_or(3);
        return super::network_bench::run(&args, members, out).await;
    }
    if let Some(entries) = args.startup_entries {
        return super::startup_bench::run(&args, entries, args.startup_live, out).await;
    }
    if let Some(days) = args.usage_days {
        return super::usage_bench::run(&args, days, out).await;
    }
    if let Some(sessions) = args.mass_drop {
        let sessions = usize::try_from(sessions).unwrap_or(usize::MAX);
        return super::mass_drop::run(&args, sessions, out).await;
    }
    let spawned = if args.spawn_server {
        Some(SpawnedServer::start(
            args.product_id,
            args.major_version,
            &[],
        )?)
    } else {
        None
    };
    let server = match (&spawned, &args.server) {
        (Some(spawned), _) => spawned.license_addr.clone(),
        (None, Some(server)) => server.clone(),
        (None, None) => bail!("give --server HOST:PORT or --spawn-server"),
    };
    let duration = Duration::from_secs(args.duration.max(1));
    writeln!(
        out,
        "license-server bench: {server}, {} s per measurement, product {} major {} type {:?}",
        duration.as_secs(),
        args.product_id,
        args.major_version,
        args.license_type
    )?;
    writeln!(
        out,
        "{:>11}  {:<22} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "concurrency",
        "workload",
        "req/s",
        "cycles/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "grant p99",
        "ratio"
    )?;
    let mut result = Ok(());
    let mut durability = Vec::new();
    for &concurrency in &args.concurrency {
        let concurrency = concurrency.max(1);
        let servers = std::slice::from_ref(&server);
        let baseline = measure(servers, &args, concurrency, duration, Workload::Baseline).await?;
        if let Some(spawned) = &spawned {
            spawned.observed.take_wal_peak();
            spawned.observed.take_snapshot_pauses();
        }
        let cpu_before = spawned.as_ref().and_then(SpawnedServer::cpu_seconds);
        let cycles = measure(servers, &args, concurrency, duration, Workload::Cycles).await?;
        let cpu = spawned
            .as_ref()
            .and_then(SpawnedServer::cpu_seconds)
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        if let Some(spawned) = &spawned {
            // The last snapshot's line may still be on its way.
            tokio::time::sleep(Duration::from_millis(300)).await;
            durability.push((
                concurrency,
                spawned.observed.take_wal_peak(),
                spawned.observed.take_snapshot_pauses(),
            ));
        }
        let with_listeners = match (args.listeners, &spawned) {
            (Some(n), Some(spawned)) => {
                let (m, summary) = super::stream_bench::compare(
                    spawned,
                    &args,
                    n,
                    concurrency,
                    duration,
                    (&cycles, cpu),
                )
                .await?;
                Some((format!("cycle, {n} streams"), m, summary))
            }
            _ => None,
        };
        let rows = [
            ("baseline GET /health", &baseline),
            ("license cycle (4 req)", &cycles),
        ]
        .into_iter()
        .chain(
            with_listeners
                .as_ref()
                .map(|(name, m, _)| (name.as_str(), m)),
        );
        for (name, m) in rows {
            let mut all = m.latencies.clone();
            all.sort_unstable();
            let mut grants = m.grant_latencies.clone();
            grants.sort_unstable();
            let ratio = m.rate(m.requests) / baseline.rate(baseline.requests).max(1e-9);
            writeln!(
                out,
                "{concurrency:>11}  {name:<22} {:>10.0} {:>10} {:>8.2} {:>8.2} {:>8.2} {:>9} {:>7.2}",
                m.rate(m.requests),
                if m.cycles > 0 {
                    format!("{:.0}", m.rate(m.cycles))
                } else {
                    "-".into()
                },
                percentile(&all, 50.0),
                percentile(&all, 99.0),
                percentile(&all, 99.9),
                if grants.is_empty() {
                    "-".into()
                } else {
                    format!("{:.2}", percentile(&grants, 99.0))
                },
                ratio,
            )?;
            if m.errors > 0 {
                writeln!(
                    out,
                    "{:>11}  {} errors; first: {}",
                    "",
                    m.errors,
                    m.first_error.as_deref().unwrap_or("?")
                )?;
                result = Err(anyhow::anyhow!(
                    "{} requests failed during the benchmark",
                    m.errors
                ));
            }
        }
        if let Some((_, _, summary)) = &with_listeners {
            writeln!(out, "{summary}")?;
        }
    }
    for (concurrency, wal_peak, mut pauses) in durability {
        pauses.sort_unstable();
        writeln!(
            out,
            "{concurrency:>11}  during the cycles: WAL peak {:.1} MB (bound 64 MB); {} snapshots, \
             engine paused {} ms at most (median {} ms)",
            wal_peak as f64 / 1e6,
            pauses.len(),
            pauses
                .last()
                .map_or_else(|| "-".to_owned(), |p| format!("{:.2}", *p as f64 / 1000.0)),
            pauses
                .get(pauses.len() / 2)
                .map_or_else(|| "-".to_owned(), |p| format!("{:.2}", *p as f64 / 1000.0)),
        )?;
    }
    drop(spawned);
    result
}

/// `concurrency` clients running `workload` for `duration`. Client `i` turns to `servers` from
/// the `i`-th on (the members of a failover network share the clients).
pub(super) async fn measure(
    servers: &[String],
    args: &BenchArgs,
    concurrency: usize,
    duration: Duration,
    workload: Workload,
) -> anyhow::Result<Measurement> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let mut order = servers.to_vec();
        order.rotate_left(worker % servers.len().max(1));
        let mut client = LicenseClient::new(order)?;
        let (product_id, major_version, request_type) = (
            args.product_id,
            args.major_version,
            args.license_type.into(),
        );
        workers.push(tokio::spawn(async move {
            let mut m = Measurement::default();
            let mut n = 0u64;
            let record = |m: &mut Measurement, since: Instant, result: Result<(), String>| {
                m.latencies
                    .push(u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX));
                m.requests += 1;
                if let Err(e) = result {
                    m.errors += 1;
                    m.first_error.get_or_insert(e);
                }
            };
            while Instant::now() < deadline {
                let t = Instant::now();
                if workload == Workload::Baseline {
                    let r = client.health().await.map_err(|e| e.to_string());
                    record(&mut m, t, r);
                    continue;
                }
                let opened = client
                    .open_session(&OpenSession {
                        host: format!("bench-{worker}"),
                        message: "license-server bench".into(),
                        pool: None,
                        user: None,
                    })
                    .await;
                let session = match opened {
                    Ok(opened) => {
                        record(&mut m, t, Ok(()));
                        opened
                    }
                    Err(e) => {
                        record(&mut m, t, Err(e.to_string()));
                        continue;
                    }
                };
                n += 1;
                let t = Instant::now();
                let granted = client
                    .request_license(
                        &session,
                        &RequestLicense {
                            request_id: format!("{worker}-{n}"),
                            product_id,
                            major_version,
                            request_type,
                            wait_s: Some(0),
                        },
                    )
                    .await;
                m.grant_latencies
                    .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                m.grant_started_ms
                    .push(u32::try_from(t.duration_since(started).as_millis()).unwrap_or(u32::MAX));
                let license = match granted {
                    Ok(granted) => {
                        record(&mut m, t, Ok(()));
                        Some(granted.license_id)
                    }
                    Err(e) => {
                        record(&mut m, t, Err(e.to_string()));
                        None
                    }
                };
                if let Some(license) = license {
                    let t = Instant::now();
                    let r = client
                        .release(&session, license)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string());
                    record(&mut m, t, r);
                }
                let t = Instant::now();
                let r = client
                    .close(&session)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string());
                record(&mut m, t, r);
                m.cycles += 1;
            }
            m
        }));
    }
    let mut total = Measurement::default();
    for worker in workers {
        let m = worker.await.context("a benchmark worker failed")?;
        total.requests += m.requests;
        total.cycles += m.cycles;
        total.errors += m.errors;
        if total.first_error.is_none() {
            total.first_error = m.first_error;
        }
        total.latencies.extend(m.latencies);
        total.grant_latencies.extend(m.grant_latencies);
        total.grant_started_ms.extend(m.grant_started_ms);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
