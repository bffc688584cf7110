//! `license-server bench`: a load generator in the product, like `pgbench` or `redis-benchmark`.
//!
//! Machines differ and are noisy, so a number alone means little. Each measurement therefore
//! runs twice at the same concurrency, one after the other: a **baseline** of the cheapest
//! request the license port answers (`GET /health`, no lock, no disk), then **full license
//! cycles** (open a session, get a license, release it, close: four requests, three of them
//! durable writes). The ratio of the two request rates says how close licensing gets to the
//! server's bare HTTP speed on this machine, today.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use models::{License, OpenSession, ProductRule, RequestLicense, Rules};
use time::OffsetDateTime;

use crate::{
    cli::BenchArgs,
    client::{LicenseClient, new_request_id},
    licensing::{dir::LicenseDir, identity::ServerId, keys::KeyPair},
    store::Store,
    sys::data_dir::create_private_dir,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Baseline,
    Cycles,
}

#[derive(Debug, Default)]
struct Measurement {
    requests: u64,
    cycles: u64,
    errors: u64,
    first_error: Option<String>,
    /// Every request's latency, in microseconds.
    latencies: Vec<u32>,
    /// The license requests' alone.
    grant_latencies: Vec<u32>,
    elapsed: Duration,
}

impl Measurement {
    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

pub async fn run(args: BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let spawned = if args.spawn_server {
        Some(SpawnedServer::start(args.product_id, args.major_version)?)
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
    for &concurrency in &args.concurrency {
        let concurrency = concurrency.max(1);
        let baseline = measure(&server, &args, concurrency, duration, Workload::Baseline).await?;
        let cycles = measure(&server, &args, concurrency, duration, Workload::Cycles).await?;
        for (name, m) in [
            ("baseline GET /health", &baseline),
            ("license cycle (4 req)", &cycles),
        ] {
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
    }
    drop(spawned);
    result
}

async fn measure(
    server: &str,
    args: &BenchArgs,
    concurrency: usize,
    duration: Duration,
    workload: Workload,
) -> anyhow::Result<Measurement> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let mut client = LicenseClient::new(vec![server.to_owned()])?;
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
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// A server of this very binary on a temporary data directory, with a license large enough that
/// the benchmark measures speed, not scarcity. Killed and removed when dropped.
struct SpawnedServer {
    child: Child,
    dir: PathBuf,
    license_addr: String,
}

impl SpawnedServer {
    fn start(product_id: u32, major_version: u32) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("license-server-bench-{}", new_request_id()));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self {
            child: Command::new("true").spawn()?,
            dir: dir.clone(),
            license_addr: String::new(),
        };
        let key = KeyPair::generate()?;
        let (_, public_key) = key.write_pair(&dir)?;
        let data_dir = dir.join("data");
        create_private_dir(&data_dir)?;
        let runtime = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            runtime.block_on(async {
                let store = Store::open(&data_dir.join("license-server.db")).await?;
                let server_id = ServerId::of(&store).await?;
                let license = License {
                    key: "BENCH".into(),
                    server_id: server_id.to_string(),
                    rules: Rules {
                        serial_number: 1,
                        issued: OffsetDateTime::now_utc() - time::Duration::minutes(1),
                        expires: None,
                        max_users: None,
                        products: vec![ProductRule {
                            product_id,
                            major_version,
                            product: "Benchmark".into(),
                            runcount: 1_000_000,
                            credits: 0,
                            postpay: true,
                        }],
                    },
                };
                LicenseDir::new(&data_dir)
                    .install_signed(&license, &key, &store)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                store.close().await;
                Ok::<_, anyhow::Error>(())
            })
        })?;
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "--log-format",
                "json",
                "serve",
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
            ])
            .arg(&data_dir)
            .arg("--vendor-public-key")
            .arg(&public_key)
            .env("RUST_LOG", "warn,license_server=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start a license server")?;
        let stderr = child.stderr.take().context("no stderr")?;
        server.child = child;
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = line?;
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = event["license_addr"].as_str()
            {
                server.license_addr = addr.to_owned();
                break;
            }
        }
        if server.license_addr.is_empty() {
            bail!("the spawned license server exited before it was ready");
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(server)
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
