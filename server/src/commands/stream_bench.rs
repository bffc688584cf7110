//! `bench --spawn-server --listeners N`: what open status pages cost. N clients listen to
//! `/status/events` as N browser tabs of the status page would, while the same license cycles
//! run as in the measurement without them; the report puts the two side by side (cycles per
//! second and the server's CPU time per cycle), with how many events each listener received.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};

use super::{
    bench::{Measurement, Workload, measure},
    spawned_server::SpawnedServer,
};
use crate::cli::BenchArgs;

/// N streams read in the background; each counts the events it received.
struct Listeners {
    tasks: tokio::task::JoinSet<()>,
    events: Arc<AtomicU64>,
}

impl Listeners {
    /// Opens `n` streams to the API port at `api_addr`, each one past its first event.
    async fn open(api_addr: &str, n: u64) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .context("cannot build the HTTP client")?;
        let url = format!("http://{api_addr}/status/events");
        let events = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        let (ready_tx, mut ready) = tokio::sync::mpsc::channel(1);
        for _ in 0..n {
            let response = http
                .get(&url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("cannot listen to {url}"))?;
            let (events, ready_tx) = (Arc::clone(&events), ready_tx.clone());
            tasks.spawn(read(response, events, ready_tx));
        }
        drop(ready_tx);
        for _ in 0..n {
            if tokio::time::timeout(Duration::from_secs(10), ready.recv())
                .await
                .ok()
                .flatten()
                .is_none()
            {
                bail!("a listener got no first event within 10 s");
            }
        }
        events.store(0, Ordering::Relaxed);
        Ok(Self { tasks, events })
    }
}

/// Counts the events of one stream; tells `ready` at the first.
async fn read(
    mut response: reqwest::Response,
    events: Arc<AtomicU64>,
    ready: tokio::sync::mpsc::Sender<()>,
) {
    let mut first = true;
    while let Ok(Some(chunk)) = response.chunk().await {
        let n = chunk
            .windows(b"event: status".len())
            .filter(|w| *w == b"event: status")
            .count() as u64;
        if n > 0 {
            events.fetch_add(n, Ordering::Relaxed);
            if std::mem::take(&mut first) {
                let _ = ready.send(()).await;
            }
        }
    }
}

/// The cycles at `concurrency` again, with `n` listeners; and the line that compares them with
/// `without` (measured just before, taking `cpu_without` seconds of the server's CPU).
pub(super) async fn compare(
    spawned: &SpawnedServer,
    args: &BenchArgs,
    n: u64,
    concurrency: usize,
    duration: Duration,
    (without, cpu_without): (&Measurement, Option<f64>),
) -> anyhow::Result<(Measurement, String)> {
    let listeners = Listeners::open(&spawned.api_addr, n).await?;
    let cpu_before = spawned.cpu_seconds();
    let with = measure(
        std::slice::from_ref(&spawned.license_addr),
        args,
        concurrency,
        duration,
        Workload::Cycles,
    )
    .await?;
    let cpu_with = spawned.cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    let events = listeners.events.load(Ordering::Relaxed);
    drop(listeners.tasks);
    let per_cycle = |cpu: Option<f64>, m: &Measurement| {
        cpu.filter(|_| m.cycles > 0).map_or_else(
            || "-".to_owned(),
            |cpu| format!("{:.0} µs", cpu * 1e6 / m.cycles as f64),
        )
    };
    let summary = format!(
        "{concurrency:>11}  with {n} status streams: {:.0} cycles/s against {:.0} without (ratio \
         {:.2}); server CPU per cycle {} against {}; each stream received {:.1} events/s",
        with.rate(with.cycles),
        without.rate(without.cycles),
        with.rate(with.cycles) / without.rate(without.cycles).max(1e-9),
        per_cycle(cpu_with, &with),
        per_cycle(cpu_without, without),
        events as f64 / n as f64 / with.elapsed.as_secs_f64().max(1e-9),
    );
    Ok((with, summary))
}
