//! Changing a network's members while it serves, and what every member does when they changed.
//!
//! The coordinator takes a new list ([`Network::change_members`]): a member that is not in the
//! network yet is added as a learner first, which catches up on the log (or from a snapshot)
//! before it counts; then the voters become the new list in one change, which openraft makes
//! safe with joint consensus (a majority of the old members and one of the new agree on it). A
//! member that is not in the new list is called no more.
//!
//! Every member, when it sees the membership change ([`follow`]), trusts the new members' keys and
//! no one else's, and rewrites its members' list (`network.toml`), so that a restart starts from
//! the current members.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ed25519_dalek::VerifyingKey;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use super::{
    config::{self, NetworkConfig},
    envelope::Keys,
    network::Network,
    types::{Member, NodeId},
};
use crate::sys::atomic_file::{self, Mode};

/// A change of the members that another member passes on to the coordinator.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersChange {
    /// `HOST:PORT=TOKEN` each, as `network init` takes them.
    pub members: Vec<String>,
    /// The administrator who asked for it.
    pub by: String,
}

/// How long a new member may take to catch up before the change is given up.
pub const CATCH_UP_WAIT: Duration = CATCH_UP;

/// How long a new member may take to catch up before the change is given up.
const CATCH_UP: Duration = Duration::from_secs(120);
/// How long the change itself may take to be committed.
const COMMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum ChangeError {
    #[error("this server is not a member of a failover network")]
    NotANetwork,
    #[error("{0}")]
    List(#[from] config::ConfigError),
    #[error("this member is not the coordinator, and no coordinator answers")]
    NotCoordinator,
    #[error(
        "the new list keeps none of the members: at least one must stay, for the network's \
         history to carry on"
    )]
    NoneStays,
    #[error("member {addr} did not catch up: {why} (is it running, with `network join`?)")]
    CatchUp { addr: String, why: String },
    #[error("the network did not take the change: {0}")]
    Failed(String),
}

impl ChangeError {
    /// What the coordinator said, as another member tells it (its message).
    pub fn from_coordinator(message: String) -> Self {
        Self::Failed(message)
    }
}

/// The keys of `members`, as their list entries give them.
fn keys_of<'a>(members: impl IntoIterator<Item = (&'a NodeId, &'a Member)>) -> Keys {
    Keys(
        members
            .into_iter()
            .filter_map(|(id, m)| {
                let bytes = STANDARD.decode(&m.key).ok()?;
                let key = VerifyingKey::from_bytes(&bytes.try_into().ok()?).ok()?;
                Some((*id, key))
            })
            .collect(),
    )
}

impl Network {
    /// Makes `list` the network's members (on the coordinator): see the module's documentation.
    pub async fn change_members(&self, list: &NetworkConfig) -> Result<(), ChangeError> {
        if self.coordinator() != Some(self.me) {
            return Err(ChangeError::NotCoordinator);
        }
        let current = self.members();
        let wanted = list.members();
        if !wanted.keys().any(|id| current.contains_key(id)) {
            return Err(ChangeError::NoneStays);
        }
        // The newcomers' answers must check out from the first call on.
        let mut trusted = keys_of(&current);
        trusted.0.extend(keys_of(&wanted).0);
        self.peers.set_keys(&trusted);
        for (id, member) in wanted.iter().filter(|(id, _)| !current.contains_key(id)) {
            let added =
                tokio::time::timeout(CATCH_UP, self.raft.add_learner(*id, member.clone(), true))
                    .await;
            let why = match added {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("not within {} s", CATCH_UP.as_secs()),
            };
            return Err(ChangeError::CatchUp {
                addr: member.addr.clone(),
                why,
            });
        }
        let voters: BTreeSet<NodeId> = wanted.keys().copied().collect();
        match tokio::time::timeout(COMMIT, self.raft.change_membership(voters, false)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ChangeError::Failed(e.to_string())),
            Err(_) => Err(ChangeError::Failed(format!(
                "not committed within {} s",
                COMMIT.as_secs()
            ))),
        }
    }
}

/// Follows the membership until `shutdown`: trusts its members' keys, and keeps the members'
/// list in the data directory the same.
pub async fn follow(network: Arc<Network>, shutdown: CancellationToken) {
    let mut metrics = network.raft.metrics();
    let mut seen = None;
    loop {
        let (log_id, members) = {
            let m = metrics.borrow();
            let config = &m.membership_config;
            let members: Vec<(NodeId, Member)> = config
                .membership()
                .nodes()
                .map(|(id, member)| (*id, member.clone()))
                .collect();
            (*config.log_id(), members)
        };
        // Until the network has a membership (a member that joins, before it is added), the
        // list's keys stand.
        if seen != Some(log_id) && !members.is_empty() {
            seen = Some(log_id);
            network
                .peers
                .set_keys(&keys_of(members.iter().map(|(id, m)| (id, m))));
            rewrite_list(&network, members.into_iter().map(|(_, m)| m));
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}

/// Rewrites the data directory's members' list with `members`, if they differ from it.
fn rewrite_list(network: &Network, members: impl IntoIterator<Item = Member>) {
    let list = match network.config.with_members(members) {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "the network's members do not make a valid list");
            return;
        }
    };
    let path = network.store().dir().join(config::FILE);
    let same = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| NetworkConfig::parse(&text).ok())
        .is_some_and(|written| written.members() == list.members());
    if same {
        return;
    }
    match atomic_file::replace(&path, list.to_toml().as_bytes(), Mode::Public) {
        Ok(()) => tracing::info!(
            members = list.count(),
            file = %path.display(),
            "the failover network's members changed: the members' list is rewritten"
        ),
        Err(e) => {
            tracing::warn!(error = %e, file = %path.display(), "cannot rewrite the members' list")
        }
    }
}
