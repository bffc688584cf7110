//! What a member knows of the others, for the status page's Servers: each one's own record
//! (version, platform, when it started), asked for every second with a signed hello, and whether
//! it answered lately. A member that has not answered for [`UNREACHABLE_AFTER`] shows as
//! `unreachable`, with what it last said of itself.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use models::{Server, ServerStatus};
use parking_lot::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    network::{HELLO, Network},
    types::{Member, NodeId},
};

/// How often each member is asked.
const HELLO_EVERY: Duration = Duration::from_secs(1);
/// How long a hello may take.
const HELLO_TIMEOUT: Duration = Duration::from_millis(800);
/// A member that has not answered for this long is `unreachable`.
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
struct Heard {
    record: Server,
    at: Instant,
    /// Whether the log said it stopped answering (said once, and once when it answers again).
    said_down: bool,
}

/// The others' last answers. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Roster(Arc<Mutex<BTreeMap<NodeId, Heard>>>);

impl Roster {
    /// Asks every other member for its record, every [`HELLO_EVERY`], until `shutdown`.
    pub async fn poll(self, network: Arc<Network>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(HELLO_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let mut asking = JoinSet::new();
            for id in network.members().into_keys().filter(|id| *id != network.me) {
                let network = network.clone();
                asking.spawn(async move {
                    let answer = network
                        .call(id, HELLO, b"{}".to_vec(), HELLO_TIMEOUT)
                        .await
                        .ok()
                        .and_then(|bytes| serde_json::from_slice::<Server>(&bytes).ok());
                    (id, answer)
                });
            }
            while let Some(Ok((id, answer))) = asking.join_next().await {
                let addr = network.member(id).map(|m| m.addr).unwrap_or_default();
                let mut heard = self.0.lock();
                match (answer, heard.get_mut(&id)) {
                    (Some(record), Some(before)) => {
                        if before.said_down {
                            tracing::info!(member = %addr, "a member of the failover network answers again");
                        }
                        *before = Heard {
                            record,
                            at: Instant::now(),
                            said_down: false,
                        };
                    }
                    (Some(record), None) => {
                        heard.insert(
                            id,
                            Heard {
                                record,
                                at: Instant::now(),
                                said_down: false,
                            },
                        );
                    }
                    (None, Some(before))
                        if !before.said_down && before.at.elapsed() >= UNREACHABLE_AFTER =>
                    {
                        before.said_down = true;
                        tracing::warn!(
                            member = %addr,
                            "a member of the failover network stopped answering"
                        );
                    }
                    (None, _) => {}
                }
            }
        }
    }

    /// The members that answered within [`UNREACHABLE_AFTER`].
    pub fn reachable(&self) -> usize {
        self.0
            .lock()
            .values()
            .filter(|h| h.at.elapsed() < UNREACHABLE_AFTER)
            .count()
    }

    /// The record of `member` (`id`) as the status page shows it: its last answer, `running`
    /// if recent, else `unreachable`; what the list says of it if it never answered.
    fn record(&self, id: NodeId, member: &Member, serial_number: &str) -> Server {
        if let Some(heard) = self.0.lock().get(&id) {
            let mut record = heard.record.clone();
            record.coordinator = None;
            record.status = if heard.at.elapsed() < UNREACHABLE_AFTER {
                ServerStatus::Running
            } else {
                ServerStatus::Unreachable
            };
            return record;
        }
        let (host, port) = member.addr.rsplit_once(':').unwrap_or((&member.addr, "0"));
        Server {
            server_id: member.server_id.clone(),
            status: ServerStatus::Unreachable,
            serial_number: serial_number.to_owned(),
            version: String::new(),
            hostname: host.to_owned(),
            ip_address: host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port: port.parse().unwrap_or(0),
            platform: String::new(),
            started: time::OffsetDateTime::UNIX_EPOCH,
            coordinator: None,
            build: None,
            moved: None,
        }
    }
}

impl Network {
    /// The members as Raft knows them now.
    pub fn members(&self) -> BTreeMap<NodeId, Member> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, member)| (*id, member.clone()))
            .collect()
    }

    /// Every member's record for `data.json`, this one's (`own`) naming the coordinator; in the
    /// order of their addresses.
    pub fn servers(&self, mut own: Server) -> Vec<Server> {
        let members = self.members();
        own.coordinator = self
            .coordinator()
            .and_then(|id| members.get(&id).map(|m| m.server_id.clone()));
        let mut servers: Vec<(String, Server)> = members
            .iter()
            .map(|(id, member)| {
                let record = if *id == self.me {
                    own.clone()
                } else {
                    self.roster.record(*id, member, &own.serial_number)
                };
                (member.addr.clone(), record)
            })
            .collect();
        servers.sort_by(|a, b| a.0.cmp(&b.0));
        servers.into_iter().map(|(_, record)| record).collect()
    }
}
