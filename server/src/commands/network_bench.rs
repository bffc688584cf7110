//! `bench --spawn-network N`: license cycles on a failover network of `N` members on this
//! machine, next to a single server in the same run, and (`--failover-kills K`) how long clients
//! wait for the next successful request when the coordinator is killed.
//!
//! The single server goes first: a release server of this binary on its own data directory, as
//! `--spawn-server` measures it. Then `N` members are formed the way `network init` forms them,
//! with one license for the network installed on the first member, and measured the same way,
//! the clients spread over the members (client `i` turns to member `i mod N` first). The ratio of
//! the two cycle rates is what replication costs on this machine, today. Each kill then takes
//! the coordinator down with `kill -9` under a light load, times the first license cycle that
//! succeeds after it (on any member), and starts the member again.

use std::{
    io::Write,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    bench::{Measurement, Workload, measure},
    spawned_server::{SpawnedServer, install_bench_license},
};
use crate::{
    app::SERVER_KEY_FILE,
    cli::BenchArgs,
    client::LicenseClient,
    failover::config::{self, NetworkConfig},
    licensing::{
        identity::{ServerId, network_id},
        keys::KeyPair,
    },
    store::Store,
    sys::data_dir::create_private_dir,
};

/// Clients cycling while the coordinator is killed.
const KILL_LOAD: usize = 8;

/// A free port of 127.0.0.1, for a member whose address the list names before it starts.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `n` members formed and started; removed with their directory when dropped.
struct SpawnedNetwork {
    members: Vec<SpawnedServer>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Drop for SpawnedNetwork {
    fn drop(&mut self) {
        self.members.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl SpawnedNetwork {
    async fn start(n: usize, args: &BenchArgs) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "license-server-network-bench-{}",
            crate::client::new_request_id()
        ));
        std::fs::create_dir_all(&dir)?;
        let vendor = KeyPair::generate()?;
        let (_, public_key) = vendor.write_pair(&dir)?;
        let mut tokens = Vec::new();
        let mut ports = Vec::new();
        for i in 0..n {
            let data_dir = dir.join(format!("member-{i}")).join("data");
            create_private_dir(&data_dir)?;
            let store = Store::open(&data_dir.join("license-server.db")).await?;
            let server_id = ServerId::of(&store).await?;
            store.close().await;
            let key = KeyPair::load_or_create(&data_dir.join(SERVER_KEY_FILE))?;
            let port = free_port()?;
            tokens.push(format!(
                "127.0.0.1:{port}={}",
                config::token(server_id.as_str(), &key.signing_key().verifying_key())
            ));
            ports.push(port);
        }
        let list = NetworkConfig::from_tokens(&tokens)?;
        let mut members = Vec::new();
        for i in 0..n {
            let member_dir = dir.join(format!("member-{i}"));
            let data_dir = member_dir.join("data");
            std::fs::write(data_dir.join(config::FILE), list.to_toml())?;
            let store = Store::open(&data_dir.join("license-server.db")).await?;
            store.mark_member().await?;
            if i == 0 {
                install_bench_license(
                    &data_dir,
                    &store,
                    network_id(list.server_ids()).as_str(),
                    &vendor,
                    args.product_id,
                    args.major_version,
                )
                .await?;
            }
            store.close().await;
            members.push(SpawnedServer::prepared(member_dir, public_key.clone(), &[]));
        }
        let mut network = Self {
            members,
            ports,
            dir,
        };
        for i in 0..n {
            network.launch(i)?;
        }
        network.wait_until_ready().await?;
        Ok(network)
    }

    fn launch(&mut self, i: usize) -> anyhow::Result<()> {
        let port = self.ports[i].to_string();
        tokio::task::block_in_place(|| self.members[i].launch(&port, "0"))
    }

    fn servers(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// Waits (up to 30 s) until a license cycle succeeds through every member: a coordinator,
    /// the license installed everywhere.
    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        for server in self.servers() {
            let mut client = LicenseClient::new(vec![server])?;
            while cycle(&mut client).await.is_err() {
                if started.elapsed() > Duration::from_secs(30) {
                    bail!("the spawned failover network did not grant within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Waits (up to 30 s) until member `i`'s ledger reaches the coordinator's ledger as of now.
    async fn caught_up(&self, i: usize) -> anyhow::Result<()> {
        let coordinator = self.coordinator().await?;
        let tail = |m: usize| {
            let path = self.members[m].data_dir.join("license-server.db");
            async move {
                let store = Store::open(&path).await?;
                let tail = store.ledger_tail().await?.map_or(0, |(seq, _)| seq);
                store.close().await;
                anyhow::Ok(tail)
            }
        };
        let target = tail(coordinator).await?;
        let started = Instant::now();
        while tail(i).await? < target {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("a restarted member did not catch up within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The member that coordinates now, as the first running member's `data.json` says.
    async fn coordinator(&self) -> anyhow::Result<usize> {
        let http = reqwest::Client::new();
        for member in self.members.iter().filter(|m| m.is_running()) {
            let data: serde_json::Value = http
                .get(format!(
                    "http://{}/status/data.json?sessions=false",
                    member.api_addr
                ))
                .send()
                .await?
                .json()
                .await?;
            let servers = data["servers"].as_array().context("no servers")?;
            let Some(coordinator) = servers
                .iter()
                .find_map(|s| s["coordinator"].as_str().map(str::to_owned))
            else {
                continue;
            };
            if let Some(record) = servers
                .iter()
                .find(|s| s["server_id"] == coordinator.as_str())
                && let Some(i) = self.ports.iter().position(|p| record["port"] == *p)
            {
                return Ok(i);
            }
        }
        bail!("no member names a coordinator")
    }
}

/// One full license cycle (the benchmark's product, from the `bench` options).
async fn cycle(client: &mut LicenseClient) -> Result<(), crate::client::ClientError> {
    let session = client
        .open_session(&models::OpenSession {
            host: "bench-probe".into(),
            message: "license-server bench".into(),
            pool: None,
            user: None,
        })
        .await?;
    let granted = client
        .request_license(
            &session,
            &models::RequestLicense {
                request_id: crate::client::new_request_id(),
                product_id: 1,
                major_version: 0,
                request_type: models::RequestType::All,
                wait_s: Some(0),
            },
        )
        .await;
    let released = match granted {
        Ok(granted) => client.release(&session, granted.license_id).await.map(drop),
        Err(e) => Err(e),
    };
    let closed = client.close(&session).await.map(drop);
    released.and(closed)
}

pub async fn run(args: &BenchArgs, n: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.product_id != 1 || args.major_version != 0 {
        bail!("--spawn-network measures product 1 version 0, the spawned license's");
    }
    let duration = Duration::from_secs(args.duration.max(1));
    writeln!(
        out,
        "license-server bench --spawn-network {n}: license cycles on a single server, then on {n} \
         members (clients spread over them), {} s per measurement",
        duration.as_secs()
    )?;
    writeln!(
        out,
        "{:>11}  {:<26} {:>10} {:>9} {:>9} {:>10}",
        "concurrency", "server", "cycles/s", "p50 ms", "p99 ms", "ratio"
    )?;
    let single = SpawnedServer::start(args.product_id, args.major_version, &[])?;
    let mut singles = Vec::new();
    for &concurrency in &args.concurrency {
        let servers = std::slice::from_ref(&single.license_addr);
        singles.push(
            measure(
                servers,
                args,
                concurrency.max(1),
                duration,
                Workload::Cycles,
            )
            .await?,
        );
    }
    drop(single);
    let mut network = SpawnedNetwork::start(n, args).await?;
    let mut errors = 0;
    for (&concurrency, single) in args.concurrency.iter().zip(&singles) {
        let replicated = measure(
            &network.servers(),
            args,
            concurrency.max(1),
            duration,
            Workload::Cycles,
        )
        .await?;
        for (name, m) in [
            ("single server", single),
            (&*format!("{n} members, replicated"), &replicated),
        ] {
            write_row(out, concurrency, name, m, single)?;
            errors += m.errors;
        }
    }
    if let Some(kills) = args.failover_kills {
        failover(&mut network, kills, out).await?;
    }
    if errors > 0 {
        bail!("{errors} requests failed during the benchmark");
    }
    Ok(())
}

/// `p50 …, p99 …, max …` of `waits` in milliseconds.
fn spread(waits: &[Duration]) -> String {
    let mut us: Vec<u32> = waits
        .iter()
        .map(|w| u32::try_from(w.as_micros()).unwrap_or(u32::MAX))
        .collect();
    let Some(max) = us.iter().max().copied() else {
        return "-".to_owned();
    };
    us.sort_unstable();
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        super::bench::percentile(&us, 50.0),
        super::bench::percentile(&us, 99.0),
        f64::from(max) / 1000.0
    )
}

fn write_row(
    out: &mut dyn Write,
    concurrency: usize,
    name: &str,
    m: &Measurement,
    single: &Measurement,
) -> anyhow::Result<()> {
    let mut latencies = m.latencies.clone();
    latencies.sort_unstable();
    writeln!(
        out,
        "{concurrency:>11}  {name:<26} {:>10.0} {:>9.2} {:>9.2} {:>10.2}",
        m.rate(m.cycles),
        super::bench::percentile(&latencies, 50.0),
        super::bench::percentile(&latencies, 99.0),
        m.rate(m.cycles) / single.rate(single.cycles).max(1e-9),
    )?;
    if m.errors > 0 {
        writeln!(
            out,
            "{:>11}  {} errors; first: {}",
            "",
            m.errors,
            m.first_error.as_deref().unwrap_or("?")
        )?;
    }
    Ok(())
}

/// `kills` times: the coordinator killed under load, the wait for the next successful cycle, the
/// member started again.
async fn failover(
    network: &mut SpawnedNetwork,
    kills: u64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for worker in 0..KILL_LOAD {
        let mut servers = network.servers();
        let first = worker % servers.len();
        servers.rotate_left(first);
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let Ok(mut client) = LicenseClient::new(servers) else {
                return;
            };
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if cycle(&mut client).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }
    let mut waits = Vec::new();
    let mut elections = Vec::new();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let coordinator = network.coordinator().await?;
        network.members[coordinator].stop();
        let killed = Instant::now();
        let mut client = LicenseClient::new(network.servers())?;
        while cycle(&mut client).await.is_err() {
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("no request succeeded within 60 s of killing the coordinator");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        waits.push(killed.elapsed());
        // The part of the wait that was Raft's: until a member said it decides.
        if let Some(took_over) = network
            .members
            .iter()
            .filter_map(|m| *m.observed.coordinating_since.lock())
            .filter(|at| *at > killed)
            .min()
        {
            elections.push(took_over - killed);
        }
        network.launch(coordinator)?;
        network.wait_until_ready().await?;
        // One failure at a time: the member is back in full before the next.
        network.caught_up(coordinator).await?;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for worker in load {
        let _ = worker.await;
    }
    writeln!(
        out,
        "failover: the coordinator killed {kills} times under load ({KILL_LOAD} clients); the next \
         successful license cycle came after {}",
        spread(&waits),
    )?;
    writeln!(
        out,
        "          of which until a new coordinator decided ({} of {kills} seen in its log): {}",
        elections.len(),
        spread(&elections),
    )?;
    Ok(())
}
