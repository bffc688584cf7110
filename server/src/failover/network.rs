//! A member of a failover network: its Raft, how it reaches the others, and the tasks that keep
//! it in step with them.
//!
//! [`start`] builds the member's Raft on its store (log and state machine, the engine linked in)
//! and, on a network that has never run, forms it: every member of the first list calls Raft's
//! `initialize` with the same members, which is safe (a member that already has a log refuses).
//! The engine's writer queue is drained by the [`proposer`](super::proposer). [`Network::tasks`]
//! are what runs beside it while the member serves: the leadership watch, the roster's hellos,
//! and the relays of heartbeats and outbox entries to the coordinator.

use std::{sync::Arc, time::Duration};

use ed25519_dalek::SigningKey;
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{
    calls::{CallFailure, PeerNetwork, Peers},
    config::{NetworkConfig, node_id},
    leadership,
    log_store::LogStore,
    membership, proposer, relay,
    replica::{Boxed, Link},
    roster::Roster,
    state_machine::StateMachine,
    types::{Member, NodeId, TypeConfig},
};
use crate::{ledger::Queue, store::Store};

pub type Raft = openraft::Raft<TypeConfig>;

/// Raft's heartbeat: how often the coordinator tells the others it is there. openraft also
/// gives each append to a member this long to answer, so it bounds a batch's round trip too.
pub const HEARTBEAT_MS: u64 = 50;
/// Most log entries in one append. openraft's 300 took a member that came back a few hundred
/// entries behind longer than a heartbeat to take in (a debug build, under load): the append
/// timed out and was sent again, and again, and the member never caught up.
const MAX_PAYLOAD_ENTRIES: u64 = 32;
/// A member that has not heard from the coordinator for the coordinator's lease (the longest
/// election timeout) and then a random time between these (drawn once per start) starts an
/// election: what a client's wait after losing the coordinator is mostly made of (300 to 400
/// ms, plus openraft's tick of 45 ms; one more timeout when two members stood at once). With
/// these, 64 clients on two cores caused no election that a kill did not (`bench
/// --failover-kills`); members on hosts that stall longer than the lease would want more.
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 100;
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 200;

/// The member-to-member endpoints besides Raft's, on the license port.
pub const HELLO: &str = "/members/v1/hello";
pub const HEARTBEATS: &str = "/members/v1/heartbeats";
pub const OUTBOX: &str = "/members/v1/outbox";
pub const FORWARD: &str = "/members/v1/forward";
pub const MEMBERS: &str = "/members/v1/members";

/// How long a member waits for another to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Raft log entries (each a batch of events) between two snapshots of the ledger; a member that
/// is further behind than what the log keeps after one catches up from it.
pub const SNAPSHOT_EVERY: u64 = 20_000;

fn raft_config(snapshot_every: u64) -> anyhow::Result<Arc<openraft::Config>> {
    Ok(Arc::new(
        openraft::Config {
            cluster_name: "license-server".to_owned(),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            // A snapshot holds the whole ledger; the log keeps a twentieth of the entries between
            // two after it, for members a little behind.
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every),
            max_in_snapshot_log_to_keep: snapshot_every / 20,
            purge_batch_size: (snapshot_every / 20).max(1),
            install_snapshot_timeout: 30_000,
            ..Default::default()
        }
        .validate()?,
    ))
}

/// A running member.
pub struct Network {
    pub me: NodeId,
    pub raft: Raft,
    pub peers: Arc<Peers>,
    pub config: NetworkConfig,
    pub roster: Roster,
    link: Link,
    store: Store,
    /// Told when a proposal failed and the engine must rebuild.
    trouble: Arc<Notify>,
}

/// Starts member `key` of `config` on `store`: its Raft, with `link` to its engine, and the
/// proposer draining `queue` until `stop` (the member's ledger task). A snapshot of the ledger
/// every `snapshot_every` log entries ([`SNAPSHOT_EVERY`]).
pub async fn start(
    store: Store,
    config: NetworkConfig,
    key: SigningKey,
    link: Link,
    queue: Queue,
    snapshot_every: u64,
    stop: CancellationToken,
) -> anyhow::Result<(Arc<Network>, JoinHandle<()>)> {
    let me = node_id(&key.verifying_key());
    anyhow::ensure!(
        config.member(me).is_some(),
        "this member's key is not in the failover network's list"
    );
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .no_proxy()
        .build()?;
    let peers = Arc::new(Peers::new(me, key, &config.keys(), http));
    let raft = Raft::new(
        me,
        raft_config(snapshot_every)?,
        PeerNetwork(peers.clone()),
        LogStore::new(store.clone()),
        StateMachine::linked(store.clone(), me, link.clone()),
    )
    .await?;
    if config.joins() && !raft.is_initialized().await? {
        tracing::info!(
            "this member joins a failover network that runs: it waits for the coordinator to add \
             it (PUT /server/manage/network/members on a member)"
        );
    } else if !raft.is_initialized().await? {
        match raft.initialize(config.members()).await {
            Ok(()) => tracing::info!(
                members = config.count(),
                "failover network formed: this member starts its first election"
            ),
            Err(e) => tracing::info!(error = %e, "failover network already formed"),
        }
    }
    let trouble = Arc::new(Notify::new());
    let proposer = tokio::spawn(proposer::run(
        raft.clone(),
        queue,
        me,
        trouble.clone(),
        stop,
    ));
    let network = Arc::new(Network {
        me,
        raft,
        peers,
        roster: Roster::default(),
        config,
        link,
        store,
        trouble,
    });
    Ok((network, proposer))
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// What runs beside the member while it serves, until `shutdown`.
    pub fn tasks(self: &Arc<Self>, shutdown: &CancellationToken) -> Vec<Boxed<'static, ()>> {
        vec![
            Box::pin(leadership::watch(
                self.raft.clone(),
                self.link.clone(),
                self.me,
                self.trouble.clone(),
                shutdown.clone(),
            )),
            Box::pin(self.roster.clone().poll(self.clone(), shutdown.clone())),
            Box::pin(membership::follow(self.clone(), shutdown.clone())),
            Box::pin(relay::heartbeats(
                self.clone(),
                self.link.replica.clone(),
                shutdown.clone(),
            )),
            Box::pin(relay::outbox(
                self.clone(),
                self.link.replica.clone(),
                self.store.clone(),
                shutdown.clone(),
            )),
        ]
    }

    /// Records another member's outbox `entries` as the coordinator, durably.
    pub async fn record_outbox(&self, entries: &relay::OutboxEntries) -> anyhow::Result<()> {
        relay::record(self.link.replica.as_ref(), entries).await
    }

    /// The member's store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The coordinator, as this member knows it.
    pub fn coordinator(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Member `id` as the current membership (or the list) has it.
    pub fn member(&self, id: NodeId) -> Option<Member> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .cloned()
            .or_else(|| self.config.member(id).cloned())
    }

    /// Calls `path` of member `target` with `body`; the answer, once believed.
    pub async fn call(
        &self,
        target: NodeId,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<bytes::Bytes, CallFailure> {
        let addr = self
            .member(target)
            .map(|m| m.addr)
            .ok_or_else(|| CallFailure::Unreachable {
                member: target,
                why: "not a member".to_owned(),
            })?;
        self.peers.call(target, &addr, path, body, timeout).await
    }

    /// Stops the member's Raft (after its ledger task finished).
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "the failover network's Raft did not stop cleanly");
        }
    }
}
