//! `license-server serve`: checks the data directory, opens the store, binds both ports, and runs
//! until told to stop.
//!
//! Everything that can fail does so before the first request is served, with a message that says
//! what to change (a taken port names the option that sets it). Shutdown is graceful: the
//! listeners stop accepting, requests in flight finish (up to [`SHUTDOWN_GRACE`]), then the store
//! is closed cleanly.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, anyhow};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    anchoring,
    app::{App, AppConfig, LedgerTask},
    engine::{Engine, EngineConfig},
    failover::network::Network,
    http::{
        accept::{self, ConnectionLimits},
        tls::{Tls, TlsFiles},
    },
    ledger,
    licensing::{identity::ServerId, sealed},
    ports,
    store::Store,
    sys::{
        atomic_file::{self, Mode},
        data_dir::DataDir,
        limits,
    },
};

/// How long requests in flight may take to finish once shutdown began.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub api_port: u16,
    pub data_dir: PathBuf,
    pub serial_number: String,
    /// Vendor public keys (PEM files) that license files must be signed with.
    pub vendor_public_keys: Vec<PathBuf>,
    pub engine: EngineConfig,
    /// How long an admin session token lives without use.
    pub admin_idle_timeout: Duration,
    /// The vendor licensing service for the admin API's `remote/...` endpoints.
    pub vendor_url: Option<String>,
    /// What each port accepts: connections in all, per client address, idle time.
    pub connections: ConnectionLimits,
    /// Ledger entries older than this move from the store into archive segments; `None`: all
    /// stay in the store.
    pub archive_after: Option<Duration>,
    /// How often the ledger's head is reported to the vendor service (with `vendor_url`);
    /// `None`: only with activations.
    pub ledger_report_every: Option<Duration>,
    /// HTTPS on the API port with this certificate and key; plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// With `tls`: the license port speaks TLS too.
    pub tls_license_port: bool,
    /// A private CA's certificates (PEM) that the vendor service's certificate may be signed by,
    /// besides the public roots.
    pub vendor_ca: Option<PathBuf>,
}

impl ServeConfig {
    /// A server on 127.0.0.1 on free ports, with the command line's defaults otherwise: what
    /// tests and tools start, changing only what they are about.
    pub fn local(data_dir: PathBuf) -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            api_port: 0,
            data_dir,
            serial_number: String::new(),
            vendor_public_keys: Vec::new(),
            engine: EngineConfig::default(),
            admin_idle_timeout: Duration::from_secs(1800),
            vendor_url: None,
            connections: ConnectionLimits::default(),
            archive_after: None,
            ledger_report_every: None,
            tls: None,
            tls_license_port: false,
            vendor_ca: None,
        }
    }
}

/// A started server. Dropping it does not stop it; call [`Running::stop`] or
/// [`Running::run_until`].
#[derive(Debug)]
pub struct Running {
    pub license_addr: SocketAddr,
    pub api_addr: SocketAddr,
    /// Whether the API port speaks TLS (https).
    pub api_tls: bool,
    pub server_id: ServerId,
    shutdown: CancellationToken,
    tasks: JoinSet<io::Result<()>>,
    /// The licenses watcher and the engine's ticks; end with `shutdown`, aborted if dropped.
    watcher: JoinSet<()>,
    ledger: LedgerTask,
    engine: Arc<Engine>,
    network: Option<Arc<Network>>,
    store: Store,
    /// Holds the data directory's lock until the server has stopped.
    _data_dir: DataDir,
}

pub async fn start(config: ServeConfig) -> anyhow::Result<Running> {
    let trusted = sealed::trusted_keys(&config.vendor_public_keys)?;
    if sealed::is_sealed() {
        tracing::info!(
            vendor_keys = %sealed::sealed_key_ids().join(","),
            "sealed build: trusts only the vendor keys built into it"
        );
    } else {
        tracing::warn!(
            "development build: it trusts vendor keys given at run time (--vendor-public-key), so \
             whoever runs it can sign licenses for it; not for production. Vendors ship a sealed \
             build (make vendor-build VENDOR_KEYS=...)"
        );
    }
    if trusted.is_empty() {
        tracing::warn!(
            "no vendor public key is configured (--vendor-public-key): no license can be verified"
        );
    }
    let mut data_dir = DataDir::open(&config.data_dir)?;
    data_dir.lock()?;
    let open_files = limits::raise_open_files();
    let (connections, cut) = config.connections.fitted(open_files, 2);
    tracing::info!(
        open_files = %open_files.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        max_connections = connections.max_total,
        max_connections_per_address = connections.max_per_address,
        "open-files limit"
    );
    if let Some(room) = cut {
        tracing::warn!(
            open_files = open_files.unwrap_or_default(),
            max_connections = room,
            "the open-files limit leaves room for {room} connections per port, fewer than \
             --max-connections {}; raise the limit (LimitNOFILE= in a systemd unit, ulimit -Hn)",
            config.connections.max_total
        );
    }
    // Checked before anything else is opened: a bad certificate is a configuration error.
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(Tls::load(files.clone())?)),
        None => None,
    };
    if config.tls_license_port && tls.is_none() {
        anyhow::bail!("--tls-license-port needs --tls-cert and --tls-key");
    }
    if config.tls_license_port && data_dir_is_member(&config.data_dir) {
        anyhow::bail!(
            "--tls-license-port is not for a member of a failover network (the members call each \
             other on the license port over plain HTTP, each call authenticated); use TLS on the \
             API port, and keep the license port on a trusted network"
        );
    }
    let license_listener = listen(config.bind, config.port, "license port", "--port").await?;
    let api_listener = listen(config.bind, config.api_port, "API port", "--api-port").await?;
    let license_addr = license_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;
    let (state, ledger) = App::open(
        &data_dir,
        AppConfig {
            trusted,
            engine: config.engine,
            serial_number: config.serial_number,
            bind: config.bind,
            license_port: license_addr.port(),
            admin_idle_timeout: config.admin_idle_timeout,
            vendor_url: config.vendor_url,
            vendor_ca: config.vendor_ca,
        },
    )
    .await?;
    if let Some(password) = state.auth.create_first_admin().await? {
        let file = data_dir.initial_password_path();
        atomic_file::replace(&file, format!("{password}\n").as_bytes(), Mode::Private)
            .with_context(|| format!("cannot write {}", file.display()))?;
        // The password itself never goes to the log: logs are shipped to log stores.
        tracing::warn!(
            principal = "admin",
            file = %file.display(),
            "no administrator existed: created `admin` with a random password, which is in {} \
             (readable by this user only); change it with `license-server user passwd \
             --principal admin`, which deletes the file",
            file.display()
        );
    }
    let shutdown = state.stopping.clone();
    let mut watcher = JoinSet::new();
    watcher.spawn(state.inventory.clone().watch(shutdown.clone()));
    watcher.spawn(state.engine.clone().run_ticks(shutdown.clone()));
    watcher.spawn(state.engine.clone().run_recovery(shutdown.clone()));
    watcher.spawn(state.engine.clone().run_snapshots(shutdown.clone()));
    watcher.spawn(state.engine.clone().run_audit(shutdown.clone()));
    {
        let (usage, changes) = (state.usage.clone(), state.engine.changes());
        let shutdown = shutdown.clone();
        watcher.spawn(async move { usage.run(changes, shutdown).await });
    }
    match (&state.network, config.archive_after) {
        (Some(network), _) => {
            for task in network.tasks(&shutdown) {
                watcher.spawn(task);
            }
        }
        // A member's ledger is the replicated log's state machine, which snapshots it whole:
        // its old entries stay in the store.
        (None, Some(after)) => {
            watcher.spawn(ledger::archive::run(
                state.store.clone(),
                after,
                shutdown.clone(),
            ));
        }
        (None, None) => {}
    }
    if let (Some(every), Some(_)) = (config.ledger_report_every, &state.vendor) {
        watcher.spawn(anchoring::run(state.clone(), every, shutdown.clone()));
    }
    let (server_id, store, engine, network) = (
        state.identity.server_id.clone(),
        state.store.clone(),
        state.engine.clone(),
        state.network.clone(),
    );
    if let Some(tls) = &tls {
        watcher.spawn(tls.clone().watch("API port", shutdown.clone()));
    }
    let mut tasks = JoinSet::new();
    tasks.spawn(accept::serve(
        license_listener,
        ports::license_port(state.clone()),
        connections,
        tls.clone().filter(|_| config.tls_license_port),
        shutdown.clone(),
    ));
    tasks.spawn(accept::serve(
        api_listener,
        ports::api_port(state),
        connections,
        tls.clone(),
        shutdown.clone(),
    ));
    Ok(Running {
        license_addr,
        api_addr,
        api_tls: tls.is_some(),
        server_id,
        shutdown,
        tasks,
        watcher,
        ledger,
        engine,
        network,
        store,
        _data_dir: data_dir,
    })
}

/// Whether the data directory holds a members' list (it is a failover network's member).
fn data_dir_is_member(dir: &std::path::Path) -> bool {
    dir.join(crate::failover::config::FILE).exists()
}

async fn listen(ip: IpAddr, port: u16, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).await.map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::AddrInUse => format!(
                "port {port} is already in use (is another license server running?); \
                 choose another with {flag}"
            ),
            io::ErrorKind::AddrNotAvailable => {
                format!("{ip} is not an address of this machine; check --bind")
            }
            io::ErrorKind::PermissionDenied => {
                format!("permission denied (ports below 1024 need privileges); choose another with {flag}")
            }
            _ => e.to_string(),
        };
        anyhow!("cannot listen on {addr} for the {what}: {why}")
    })
}

impl Running {
    /// The status page as a browser on this machine reaches it.
    pub fn status_page_url(&self) -> String {
        let ip = match self.api_addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!(
            "{}://{}{}",
            if self.api_tls { "https" } else { "http" },
            SocketAddr::new(ip, self.api_addr.port()),
            ports::STATUS_PAGE
        )
    }

    /// Serves until `signal` completes or a listener fails, then shuts down gracefully.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let failed = tokio::select! {
            () = signal => None,
            Some(ended) = self.tasks.join_next() => Some(ended),
        };
        tracing::info!("shutting down");
        self.shutdown.cancel();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "requests still running after {} s; stopping anyway",
                SHUTDOWN_GRACE.as_secs()
            );
            self.tasks.shutdown().await;
        }
        // The watcher queries the store; it stops at the cancellation, before the store closes.
        while self.watcher.join_next().await.is_some() {}
        // A last snapshot, so the next start replays nothing; then everything appended is
        // committed before the store closes, and the head is signed as a clean stop's.
        if let Err(e) = self.engine.take_snapshot().await {
            tracing::warn!(error = format!("{e:#}"), "cannot write the last snapshot");
        }
        self.ledger.finish().await;
        // A member's ledger grows while its Raft runs: stopped first, so none follows the head.
        if let Some(network) = &self.network {
            network.shutdown().await;
        }
        if let Err(e) = self.engine.sign_head(true).await {
            tracing::warn!(error = format!("{e:#}"), "cannot sign the ledger's head");
        }
        self.store.close().await;
        match failed {
            None => Ok(()),
            Some(Ok(Ok(()))) => Err(anyhow!("a listener stopped unexpectedly")),
            Some(Ok(Err(e))) => Err(e).context("a listener failed"),
            Some(Err(e)) => Err(e).context("a listener task failed"),
        }
    }

    /// Stops at once (gracefully).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.run_until(std::future::ready(())).await
    }
}
