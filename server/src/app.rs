//! The composition root: the one place that builds the server's object graph, used by `serve`
//! and by the tests alike, so what the tests exercise is what runs.
//!
//! [`App::open`] opens the store of a data directory, verifies and replays the ledger into the
//! engine, loads the licenses, and wires the administrators' logins, this server's own key and the
//! HTTP client for the vendor service. A data directory with a members' list (`network.toml`) is a
//! member of a failover network: its engine's writer goes into the network's replicated log, and
//! the engine follows what that log commits ([`ReplicaEngine`]). The handlers of every port share
//! it as [`AppState`], one `Arc` per request.

use std::{net::IpAddr, ops::Deref, sync::Arc, time::Duration};

use anyhow::Context;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::Auth,
    engine::{Engine, EngineConfig, HeadSigner, Role},
    failover::{
        self,
        config::NetworkConfig,
        membership::ChangeError,
        network::Network,
        replica::{Boxed, Link, Replica, Replicated},
    },
    ledger::{Commit, Event, Refusal, Writer},
    licensing::{
        activation::{self, NetworkMember, NetworkMembers},
        dir::LicenseDir,
        host,
        identity::{Binding, Identity, ServerId, network_id},
        inventory::Inventory,
        keys::{KeyPair, TrustedKeys},
    },
    store::Store,
    sys::{data_dir::DataDir, prometheus::Requests},
    usage::Usage,
};

/// This server's own Ed25519 key in the data directory (mode 0600): it signs the offline
/// activation requests the server creates and the ledger's heads.
pub const SERVER_KEY_FILE: &str = "server.key";

/// How long the vendor service may take to answer before the administrator is told it could
/// not be reached.
pub const VENDOR_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`App::open`] needs besides the data directory.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The vendor keys license files must be signed with.
    pub trusted: TrustedKeys,
    pub engine: EngineConfig,
    /// This server's license serial number, as the status page shows it.
    pub serial_number: String,
    /// Where the license port listens: the address and port the status page names.
    pub bind: IpAddr,
    pub license_port: u16,
    /// How long an admin session token lives without use.
    pub admin_idle_timeout: Duration,
    /// The vendor licensing service for the admin API's `remote/...` endpoints.
    pub vendor_url: Option<String>,
    /// A private CA (PEM) the vendor service's certificate may be signed by.
    pub vendor_ca: Option<std::path::PathBuf>,
}

/// Everything a request may need. Built once, by [`App::open`].
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub identity: Identity,
    /// Licenses and pools; refreshed by its own task, read by every status request and grant.
    pub inventory: Arc<Inventory>,
    /// Sessions and grants.
    pub engine: Arc<Engine>,
    /// The ledger folded into usage totals, for the usage reports.
    pub usage: Arc<Usage>,
    /// Administrators, their tokens, and the licensed users.
    pub auth: Auth,
    /// This server's own key: it signs the offline activation requests it creates.
    pub server_key: KeyPair,
    /// The vendor licensing service, when configured (`--vendor-url`).
    pub vendor: Option<VendorLink>,
    /// The failover network this server is a member of, if it is one.
    pub network: Option<Arc<Network>>,
    /// The HTTP requests both ports answered, for `GET /metrics`.
    pub requests: Requests,
    /// When this server started, for the uptime in `GET /metrics`.
    pub started: std::time::Instant,
    /// Cancelled when the server begins to stop: answers that never end by themselves (the
    /// status page's event streams) end then, so the shutdown does not wait for them.
    pub stopping: CancellationToken,
}

/// The vendor licensing service and the one HTTP client that calls it (connections are kept
/// and reused across calls).
#[derive(Debug, Clone)]
pub struct VendorLink {
    pub url: String,
    pub http: reqwest::Client,
}

impl VendorLink {
    /// Calls `path` of the vendor service (with the licensing `token`, if any, and `body` as
    /// JSON): its answer; or its refusal, a 4xx with its error body; or, as `Err`, why it could
    /// not be reached or answered something else.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&impl serde::Serialize>,
    ) -> Result<Result<T, (reqwest::StatusCode, models::ApiError)>, String> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url.trim_end_matches('/')));
        if let Some(token) = token {
            request = request.header(models::headers::LICENSING_TOKEN, token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| causes(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| causes(&e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map(Ok)
                .map_err(|e| format!("it answered something else than expected ({e})"));
        }
        match serde_json::from_slice::<models::ApiError>(&bytes) {
            Ok(error) if status.is_client_error() => Ok(Err((status, error))),
            _ => Err(format!("it answered HTTP {status}")),
        }
    }
}

/// An error with its causes, `outer: inner: innermost`: reqwest's own message ("error sending
/// request") says nothing of why (refused, timed out, a certificate not trusted).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Cheap to clone: one `Arc` for every request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// The ledger writer task of an [`App`]. It outlives the listeners: requests still in flight at
/// shutdown must be able to commit. [`LedgerTask::finish`] stops it after committing what was
/// queued.
#[derive(Debug)]
pub struct LedgerTask {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl LedgerTask {
    pub async fn finish(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the ledger writer failed");
        }
    }
}

impl App {
    /// Makes `list` the failover network's members (on the coordinator; see
    /// `failover::membership`), and records in the ledger the change of the network's id that
    /// comes with it (`by`: the administrator), which starts the grace of licenses bound to the
    /// id before.
    pub async fn change_members(&self, list: &NetworkConfig, by: &str) -> Result<(), ChangeError> {
        let network = self.network.as_ref().ok_or(ChangeError::NotANetwork)?;
        let previous = network_id(network.members().values().map(|m| m.server_id.as_str()));
        network.change_members(list).await?;
        let id = network_id(list.server_ids());
        if id == previous {
            return Ok(());
        }
        let event = Event::NetworkChanged {
            previous_network_id: previous.to_string(),
            network_id: id.to_string(),
            members: list.server_ids().into_iter().map(str::to_owned).collect(),
            by: by.to_owned(),
        };
        let failed = |e: &dyn std::fmt::Display| {
            ChangeError::Failed(format!(
                "the members changed, but the ledger did not record it: {e}"
            ))
        };
        let commit = self
            .engine
            .record_outside(OffsetDateTime::now_utc(), event)
            .map_err(|e| failed(&e))?;
        commit.durable().await.map_err(|e| failed(&e))?;
        tracing::info!(previous_network_id = %previous, network_id = %id, by, "the failover network's members changed");
        Ok(())
    }

    /// The failover network this server is a member of, as the admin API shows it.
    pub fn network_view(&self) -> Option<models::NetworkView> {
        let network = self.network.as_ref()?;
        let members = network.members();
        let coordinator = network
            .coordinator()
            .and_then(|id| members.get(&id))
            .map(|m| m.server_id.clone());
        Some(models::NetworkView {
            network_id: network_id(members.values().map(|m| m.server_id.as_str())).to_string(),
            coordinator,
            members: members
                .into_values()
                .map(|m| models::NetworkMemberView {
                    member: format!("{}={}:{}", m.addr, m.server_id, m.key),
                    addr: m.addr,
                    server_id: m.server_id,
                })
                .collect(),
        })
    }

    /// A new offline activation request of this server (signed, as a file's text); on a member of
    /// a failover network, for the network, naming every member.
    pub fn activation_request(
        &self,
        ledger: Option<crate::licensing::ledger_report::LedgerSummary>,
    ) -> anyhow::Result<String> {
        let network = self.network.as_ref().map(|network| {
            let members = network.members();
            let id = network_id(members.values().map(|m| m.server_id.as_str()));
            let members = NetworkMembers {
                members: members
                    .into_values()
                    .map(|m| NetworkMember {
                        server_id: m.server_id,
                        public_key: m.key,
                    })
                    .collect(),
            };
            (id.to_string(), members)
        });
        activation::create(&self.identity, &self.server_key, ledger, network)
    }

    /// The cartridges of `pool` (`None`: the default pool) now, with the engine's statistics:
    /// what the status page, its live push, `/metrics` and the usage reports show.
    pub fn cartridges(&self, pool: Option<&str>) -> Vec<models::Cartridge> {
        let snapshot = self.inventory.snapshot();
        let mut cartridges = Vec::clone(&snapshot.cartridges(pool, OffsetDateTime::now_utc()));
        self.engine.fill_statistics(&mut cartridges, pool);
        cartridges
    }

    /// Opens the data directory's store and builds everything on it. The caller holds the data
    /// directory's lock if it needs one (a running server does).
    pub async fn open(
        data_dir: &DataDir,
        config: AppConfig,
    ) -> anyhow::Result<(AppState, LedgerTask)> {
        let store = Store::open(&data_dir.store_path()).await?;
        let binding = ServerId::bound(&store, &host::detect()?).await?;
        binding.warn_if_moved(time::OffsetDateTime::now_utc());
        let server_id = binding.server_id.clone();
        let identity = Identity::detect(
            binding.clone(),
            config.serial_number,
            config.bind,
            config.license_port,
        );
        let members = failover::config::read(data_dir.path())?;
        let binding = match &members {
            Some(members) => network_binding(&store, binding, members).await?,
            None => binding,
        };
        let inventory = Arc::new(
            Inventory::load(
                LicenseDir::new(data_dir.path()),
                config.trusted,
                binding,
                store.clone(),
            )
            .await?,
        );
        let server_key = KeyPair::load_or_create(&data_dir.path().join(SERVER_KEY_FILE))?;
        if let Some(members) = &members {
            join(&store, members, &server_key, &server_id).await?;
        }
        let stop = CancellationToken::new();
        let (writer, queue) = Writer::channel(store.clone());
        let engine = Arc::new(
            Engine::load(
                &store,
                writer,
                inventory.clone(),
                config.engine,
                server_id.to_string(),
                HeadSigner {
                    key: server_key.signing_key(),
                    dir: data_dir.path().to_owned(),
                },
                if members.is_some() {
                    Role::Following
                } else {
                    Role::Single
                },
            )
            .await?,
        );
        let (task, network) = match members {
            None => (Writer::run(queue, stop.clone()), None),
            Some(members) => {
                let link = Link {
                    replica: Arc::new(ReplicaEngine {
                        engine: engine.clone(),
                        inventory: inventory.clone(),
                    }),
                    gate: Arc::default(),
                };
                let (network, proposer) = failover::network::start(
                    store.clone(),
                    members,
                    server_key.signing_key(),
                    link,
                    queue,
                    raft_snapshot_every(),
                    stop.clone(),
                )
                .await?;
                (proposer, Some(network))
            }
        };
        let auth = Auth::new(store.clone(), config.admin_idle_timeout);
        let vendor = match config.vendor_url {
            Some(url) => Some(VendorLink {
                http: vendor_client(&url, config.vendor_ca.as_deref())?,
                url,
            }),
            None => None,
        };
        let app = App {
            usage: Arc::new(Usage::new(store.clone())),
            store,
            identity,
            inventory,
            engine,
            auth,
            server_key,
            vendor,
            network,
            requests: Requests::default(),
            started: std::time::Instant::now(),
            stopping: CancellationToken::new(),
        };
        Ok((AppState(Arc::new(app)), LedgerTask { stop, task }))
    }
}

/// The HTTP client for the vendor service at `url`: https with the public roots compiled in,
/// and the certificates of `ca` (a private CA) if given.
fn vendor_client(url: &str, ca: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let parsed = reqwest::Url::parse(url)
        .with_context(|| format!("--vendor-url {url:?} is not a URL (http://HOST:PORT)"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        anyhow::bail!("--vendor-url {url:?}: give an http:// or https:// URL");
    }
    let mut builder = reqwest::Client::builder()
        .timeout(VENDOR_TIMEOUT)
        .use_rustls_tls();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca)
            .with_context(|| format!("cannot read --vendor-ca {}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("--vendor-ca {}: not PEM certificates", ca.display()))?;
        if certs.is_empty() {
            anyhow::bail!(
                "--vendor-ca {} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
                ca.display()
            );
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

/// A member's binding: licenses are bound to its network's id, derived from the members of its
/// list; and if the ledger says the members changed to these last, licenses bound to the id
/// before count for the grace from then.
async fn network_binding(
    store: &Store,
    binding: Binding,
    members: &NetworkConfig,
) -> anyhow::Result<Binding> {
    let id = network_id(members.server_ids());
    let changed = match store.last_ledger_row("network_changed").await? {
        Some((at, body)) => match serde_json::from_str(&body)? {
            Event::NetworkChanged {
                previous_network_id,
                network_id,
                ..
            } if network_id == id.as_str() => Some((
                ServerId::parse(previous_network_id)?,
                crate::sys::timestamp::parse_rfc3339(&at)?,
            )),
            _ => None,
        },
        None => None,
    };
    Ok(match changed {
        Some((previous, at)) => binding.network_changed(previous, id, at),
        None => binding.with_network(Some(id)),
    })
}

/// In a development build, how many Raft log entries between two snapshots of a member's ledger
/// (for tests of a member that catches up from one); a sealed build always uses the default.
pub const RAFT_SNAPSHOT_EVERY_ENV: &str = "LICENSE_SERVER_DEV_RAFT_SNAPSHOT_EVERY";

fn raft_snapshot_every() -> u64 {
    if crate::licensing::sealed::is_sealed() {
        return failover::network::SNAPSHOT_EVERY;
    }
    std::env::var(RAFT_SNAPSHOT_EVERY_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(failover::network::SNAPSHOT_EVERY)
}

/// Checks that this data directory is the member of `members` it claims to be (its key and its
/// server id are in the list), and makes its store a member's: a store that already has a
/// history of its own cannot join (the members' ledgers must be one chain from the start).
async fn join(
    store: &Store,
    members: &NetworkConfig,
    key: &KeyPair,
    server_id: &ServerId,
) -> anyhow::Result<()> {
    let verifying = key.signing_key().verifying_key();
    let token = failover::config::token(server_id.as_str(), &verifying);
    let me = members.member_id(&verifying).with_context(|| {
        format!(
            "{} does not list this member: its token is {token}; run `license-server network \
             init` with every member's token",
            failover::config::FILE
        )
    })?;
    let listed = members
        .member(me)
        .map(|m| m.server_id.clone())
        .unwrap_or_default();
    anyhow::ensure!(
        listed == server_id.as_str(),
        "{} lists this member's key with server id {listed}, but this machine's server id is {} \
         (was the data directory copied from another machine?); its token is {token}",
        failover::config::FILE,
        server_id
    );
    if !store.is_member().await? {
        if let Some((entries, _)) = store.ledger_tail().await? {
            anyhow::bail!(
                "this data directory has {entries} ledger entries of its own: a member of a \
                 failover network starts with an empty ledger (the network's is one chain). Use \
                 a new data directory for the member"
            );
        }
        store.mark_member().await?;
    }
    Ok(())
}

/// The engine, and the licenses it grants from, as the failover network's state machine and
/// leadership watch see them.
#[derive(Debug)]
struct ReplicaEngine {
    engine: Arc<Engine>,
    inventory: Arc<Inventory>,
}

impl ReplicaEngine {
    /// Applies, in order, what `entries` change of this member's licenses, pools and network id.
    async fn follow_inventory<'a>(
        &self,
        entries: impl Iterator<Item = (&'a OffsetDateTime, &'a Event)> + Send,
    ) -> anyhow::Result<()> {
        for (at, event) in entries {
            self.inventory.follow(*at, event).await?;
        }
        Ok(())
    }
}

impl Replica for ReplicaEngine {
    fn applied<'a>(
        &'a self,
        mine: Option<u64>,
        entries: &'a [Replicated],
    ) -> Boxed<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // A license installed on another member counts here before anything that follows it.
            self.follow_inventory(entries.iter().map(|(_, at, event)| (at, event)))
                .await?;
            self.engine.apply_replicated(mine, entries).await
        })
    }

    fn caught_up<'a>(
        &'a self,
        entries: &'a [(OffsetDateTime, Event)],
    ) -> Boxed<'a, anyhow::Result<()>> {
        Box::pin(self.follow_inventory(entries.iter().map(|(at, event)| (at, event))))
    }

    fn follow(&self, refusal: Refusal) -> Boxed<'_, anyhow::Result<u64>> {
        Box::pin(self.engine.follow(refusal))
    }

    fn lead(&self) -> u64 {
        self.engine.lead()
    }

    fn leads(&self) -> bool {
        matches!(self.engine.role(), Role::Leading(_))
    }

    fn pause(&self, refusal: Refusal) {
        self.engine.pause(refusal);
    }

    fn unpause(&self) {
        self.engine.unpause();
    }

    fn record(&self, at: OffsetDateTime, event: Event) -> anyhow::Result<Commit> {
        Ok(self.engine.record_outside(at, event)?)
    }

    fn take_heard(&self) -> Vec<u64> {
        self.engine.take_heard()
    }

    fn keep_heard(&self, sessions: &[u64]) {
        self.engine.keep_heard(sessions);
    }

    fn heard(&self, sessions: &[u64]) {
        self.engine.heard(sessions);
    }
}
