//! `bench --spawn-server --listeners N`: what open status pages cost. N clients do what N browser
//! tabs of the status page do: listen to `/status/events`, and fetch their page of sessions
//! (`/status/sessions.json`, 50 rows) when an event's id says the sessions changed, at most once
//! a second, as the page does. The same license cycles run as in the measurement without them;
//! the report puts the two side by side (cycles per second and the server's CPU time per cycle),
//! with how many events and pages each listener received.

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

/// The shortest time between two fetches of a listener's page of sessions (the page's own).
const PAGE_SPACING: Duration = Duration::from_secs(1);

/// N streams read in the background; they count the events and pages they received.
struct Listeners {
    tasks: tokio::task::JoinSet<()>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    events: AtomicU64,
    pages: AtomicU64,
}

impl Listeners {
    /// Opens `n` streams to the API port at `api_addr`, each one past its first event.
    async fn open(api_addr: &str, n: u64) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .context("cannot build the HTTP client")?;
        let url = format!("http://{api_addr}/status/events");
        let page = format!("http://{api_addr}/status/sessions.json?limit=50");
        let counts = Arc::new(Counts::default());
        let mut tasks = tokio::task::JoinSet::new();
        let (ready_tx, mut ready) = tokio::sync::mpsc::channel(1);
        for _ in 0..n {
            let response = http
                .get(&url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("cannot listen to {url}"))?;
            let listener = Listener {
                http: http.clone(),
                page: page.clone(),
                counts: Arc::clone(&counts),
                ready: ready_tx.clone(),
            };
            tasks.spawn(listener.read(response));
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
        counts.events.store(0, Ordering::Relaxed);
        counts.pages.store(0, Ordering::Relaxed);
        Ok(Self { tasks, counts })
    }
}

/// One simulated page.
struct Listener {
    http: reqwest::Client,
    page: String,
    counts: Arc<Counts>,
    ready: tokio::sync::mpsc::Sender<()>,
}

impl Listener {
    /// Reads the stream: counts its events, tells `ready` at the first, and fetches the page of
    /// sessions when the id moved (at most every [`PAGE_SPACING`]; a change meanwhile is fetched
    /// when that time is up, as the page does).
    async fn read(self, mut response: reqwest::Response) {
        let (mut first, mut last_id, mut stale) = (true, None::<String>, false);
        let mut last_fetch = tokio::time::Instant::now() - PAGE_SPACING;
        let mut text = String::new();
        loop {
            let wait =
                (last_fetch + PAGE_SPACING).saturating_duration_since(tokio::time::Instant::now());
            let chunk = tokio::select! {
                chunk = response.chunk() => chunk,
                () = tokio::time::sleep(wait), if stale => {
                    self.fetch_page(&mut last_fetch, &mut stale).await;
                    continue;
                }
            };
            let Ok(Some(chunk)) = chunk else { return };
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                let Some(id) = event.lines().find_map(|l| l.strip_prefix("id: ")) else {
                    continue;
                };
                self.counts.events.fetch_add(1, Ordering::Relaxed);
                if std::mem::take(&mut first) {
                    let _ = self.ready.send(()).await;
                } else if last_id.as_deref() != Some(id) {
                    stale = true;
                }
                last_id = Some(id.to_owned());
            }
            if stale && last_fetch.elapsed() >= PAGE_SPACING {
                self.fetch_page(&mut last_fetch, &mut stale).await;
            }
        }
    }

    async fn fetch_page(&self, last_fetch: &mut tokio::time::Instant, stale: &mut bool) {
        *last_fetch = tokio::time::Instant::now();
        *stale = false;
        if let Ok(response) = self.http.get(&self.page).send().await
            && response.bytes().await.is_ok()
        {
            self.counts.pages.fetch_add(1, Ordering::Relaxed);
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
    let events = listeners.counts.events.load(Ordering::Relaxed);
    let pages = listeners.counts.pages.load(Ordering::Relaxed);
    drop(listeners.tasks);
    let per_cycle = |cpu: Option<f64>, m: &Measurement| {
        cpu.filter(|_| m.cycles > 0).map_or_else(
            || "-".to_owned(),
            |cpu| format!("{:.0} µs", cpu * 1e6 / m.cycles as f64),
        )
    };
    let summary = format!(
        "{concurrency:>11}  with {n} status streams: {:.0} cycles/s against {:.0} without (ratio \
         {:.2}); server CPU per cycle {} against {}; each listener received {:.1} events/s and fetched {:.2} pages of sessions/s",
        with.rate(with.cycles),
        without.rate(without.cycles),
        with.rate(with.cycles) / without.rate(without.cycles).max(1e-9),
        per_cycle(cpu_with, &with),
        per_cycle(cpu_without, without),
        events as f64 / n as f64 / with.elapsed.as_secs_f64().max(1e-9),
        pages as f64 / n as f64 / with.elapsed.as_secs_f64().max(1e-9),
    );
    Ok((with, summary))
}
