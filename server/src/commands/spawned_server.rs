//! The server `bench --spawn-server` measures: this very binary, started on a temporary data
//! directory with a license large enough that the benchmark measures speed, not scarcity.
//! Killed and removed when dropped; [`SpawnedServer::restart`] kills it (`kill -9`) and starts it
//! again on the same directory and ports.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;

use anyhow::{Context, bail};
use models::{License, ProductRule, Rules};
use time::OffsetDateTime;

use crate::{
    client::new_request_id,
    licensing::{dir::LicenseDir, identity::ServerId, keys::KeyPair},
    store::Store,
    sys::data_dir::create_private_dir,
};

/// Seats of the spawned server's license.
pub const SEATS: u32 = 1_000_000;

#[derive(Debug)]
pub struct SpawnedServer {
    child: Option<Child>,
    dir: PathBuf,
    pub data_dir: PathBuf,
    public_key: PathBuf,
    /// Options of `serve` besides the data directory, key and ports.
    options: Vec<String>,
    pub license_addr: String,
    pub api_addr: String,
    /// What the benchmark reads off the running server besides its answers.
    pub observed: Arc<Observed>,
}

/// The largest size the store's WAL file reached, the engine's pause at each snapshot, and when
/// it took over as a network's coordinator (from the server's log).
#[derive(Debug, Default)]
pub struct Observed {
    pub wal_peak: AtomicU64,
    pub snapshot_pauses_us: Mutex<Vec<u64>>,
    /// When it said it became a failover network's coordinator (as its log line was read).
    pub coordinating_since: Mutex<Option<std::time::Instant>>,
    stop: AtomicBool,
}

impl Observed {
    /// The peak so far, and starts again from the current size.
    pub fn take_wal_peak(&self) -> u64 {
        self.wal_peak.swap(0, Ordering::SeqCst)
    }

    pub fn take_snapshot_pauses(&self) -> Vec<u64> {
        std::mem::take(&mut *self.snapshot_pauses_us.lock())
    }
}

impl SpawnedServer {
    /// Starts a server whose license has [`SEATS`] seats of `product_id` `major_version`;
    /// `options` go to its `serve`.
    pub fn start(product_id: u32, major_version: u32, options: &[&str]) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("license-server-bench-{}", new_request_id()));
        std::fs::create_dir_all(&dir)?;
        let key = KeyPair::generate()?;
        let (_, public_key) = key.write_pair(&dir)?;
        let data_dir = dir.join("data");
        let mut server = Self::prepared(dir, public_key, options);
        create_private_dir(&data_dir)?;
        let runtime = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            runtime.block_on(async {
                let store = Store::open(&data_dir.join("license-server.db")).await?;
                let server_id = ServerId::of(&store).await?;
                install_bench_license(
                    &data_dir,
                    &store,
                    server_id.as_str(),
                    &key,
                    product_id,
                    major_version,
                )
                .await?;
                store.close().await;
                Ok::<_, anyhow::Error>(())
            })
        })?;
        server.launch("0", "0")?;
        Ok(server)
    }

    /// A server of the data directory `dir/data` (which the caller prepares) trusting the vendor
    /// key `public_key`, with `options` for its `serve`; [`SpawnedServer::launch`] starts it. The
    /// directory `dir` goes when it is dropped.
    pub fn prepared(dir: PathBuf, public_key: PathBuf, options: &[&str]) -> Self {
        let data_dir = dir.join("data");
        let server = Self {
            child: None,
            dir,
            data_dir: data_dir.clone(),
            public_key,
            options: options.iter().map(|&o| o.to_owned()).collect(),
            license_addr: String::new(),
            api_addr: String::new(),
            observed: Arc::default(),
        };
        let (observed, wal) = (
            server.observed.clone(),
            data_dir.join("license-server.db-wal"),
        );
        std::thread::spawn(move || {
            while !observed.stop.load(Ordering::SeqCst) {
                let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                observed.wal_peak.fetch_max(size, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        server
    }

    /// The options of `serve` from the next [`SpawnedServer::restart`] on.
    pub fn set_options(&mut self, options: &[&str]) {
        self.options = options.iter().map(|&o| o.to_owned()).collect();
    }

    /// Kills the server (`kill -9`: what it acknowledged is durable) and starts it again on the
    /// same data directory and ports.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let port = |addr: &str| addr.rsplit(':').next().unwrap_or("0").to_owned();
        let (license_port, api_port) = (port(&self.license_addr), port(&self.api_addr));
        self.launch(&license_port, &api_port)
    }

    /// Starts the server on `port` and `api_port` (`0`: a free one) and waits until it is ready.
    pub fn launch(&mut self, port: &str, api_port: &str) -> anyhow::Result<()> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--log-format", "json", "serve", "--bind", "127.0.0.1"])
            .args(["--port", port, "--api-port", api_port, "--data-dir"])
            .arg(&self.data_dir)
            .arg("--vendor-public-key")
            .arg(&self.public_key)
            .args(&self.options)
            .env("RUST_LOG", "warn,license_server=info,server=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start a license server")?;
        let stderr = child.stderr.take().context("no stderr")?;
        self.child = Some(child);
        let mut lines = BufReader::new(stderr).lines();
        let mut ready = false;
        for line in lines.by_ref() {
            let line = line?;
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && let (Some(license_addr), Some(api_addr)) =
                    (event["license_addr"].as_str(), event["api_addr"].as_str())
            {
                self.license_addr = license_addr.to_owned();
                self.api_addr = api_addr.to_owned();
                ready = true;
                break;
            }
        }
        if !ready {
            bail!("the spawned license server exited before it was ready");
        }
        // Keep draining its log so it never blocks on a full pipe, noting snapshot pauses.
        let observed = self.observed.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line.contains("snapshot of the ledger's state written")
                    && let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(pause) = event["pause_us"].as_u64()
                {
                    observed.snapshot_pauses_us.lock().push(pause);
                }
                if line.contains("this member is the coordinator") {
                    *observed.coordinating_since.lock() = Some(std::time::Instant::now());
                }
            }
        });
        Ok(())
    }

    /// Kills the server (`kill -9`); [`SpawnedServer::restart`] starts it again.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Whether it runs (it was launched and not killed since).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The CPU time the server used so far (user and system, all threads), from `/proc`; `None`
    /// where there is no `/proc` or it is not running.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name (in parentheses, which may hold spaces): fields 3 on; utime
        // and stime are fields 14 and 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        #[cfg(unix)]
        let per_second = rustix::param::clock_ticks_per_second();
        #[cfg(not(unix))]
        let per_second = 100;
        Some(ticks as f64 / per_second as f64)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Installs the benchmark's license ([`SEATS`] seats of `product_id` `major_version`, postpay),
/// signed with `key`, bound to `server_id`, into the data directory `data_dir` of `store`.
pub async fn install_bench_license(
    data_dir: &std::path::Path,
    store: &Store,
    server_id: &str,
    key: &KeyPair,
    product_id: u32,
    major_version: u32,
) -> anyhow::Result<()> {
    let license = License {
        key: "BENCH".into(),
        server_id: server_id.to_owned(),
        rules: Rules {
            serial_number: 1,
            issued: OffsetDateTime::now_utc() - time::Duration::minutes(1),
            expires: None,
            max_users: None,
            products: vec![ProductRule {
                product_id,
                major_version,
                product: "Benchmark".into(),
                runcount: SEATS,
                credits: 0,
                postpay: true,
            }],
        },
    };
    LicenseDir::new(data_dir)
        .install_signed(&license, key, store)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        self.observed.stop.store(true, Ordering::SeqCst);
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
