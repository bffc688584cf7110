//! Who decides: the member's engine follows Raft's view of who coordinates.
//!
//! [`watch`] looks at this member's Raft metrics whenever they change (and every tenth of a
//! second) and moves its engine between its roles:
//!
//! - elected coordinator: once everything committed before its term is applied (Raft's read
//!   index, confirmed by a majority), the engine leads;
//! - coordinating: while a majority has answered within the lease ([`LEASE`]) it takes changes;
//!   past it, it refuses them (`NO_QUORUM`) until the majority answers again, so a coordinator cut
//!   off from the others stops granting before they can have elected another;
//! - no longer coordinating, or a proposal failed (the engine's memory ran ahead of the log): the
//!   engine rebuilds from its ledger and follows;
//! - following: requests go to the coordinator; with no coordinator known, it refuses them
//!   (`NO_QUORUM`).
//!
//! Rebuilding and taking over hold the gate the state machine applies entries under, so neither
//! happens halfway through an entry.

use std::{sync::Arc, time::Duration};

use openraft::ServerState;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    replica::Link,
    types::{NodeId, TypeConfig},
};
use crate::ledger::Refusal;

/// How often the watch looks, besides whenever the metrics change.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How long an elected coordinator may take to confirm its majority and catch up before it
/// looks again.
const CATCH_UP: Duration = Duration::from_secs(2);

/// A coordinator that has not heard from a majority for this long refuses changes: soon after,
/// the others may elect another (they wait this long, and an election timeout more).
pub const LEASE: Duration = Duration::from_millis(super::network::ELECTION_TIMEOUT_MAX_MS);

/// What this member's metrics say, as far as the watch needs.
struct Seen {
    coordinator: Option<NodeId>,
    /// The coordinator's license port, as the members' list has it.
    coordinator_addr: Option<String>,
    elected: bool,
    /// Milliseconds since a majority last acknowledged this coordinator; `None` if never.
    acknowledged_ms: Option<u64>,
    voters: usize,
    /// Why this member's Raft stopped, if it did (a storage error).
    stopped: Option<String>,
}

fn seen(raft: &openraft::Raft<TypeConfig>, me: NodeId) -> Seen {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let membership = m.membership_config.membership();
    Seen {
        coordinator: m.current_leader,
        coordinator_addr: m
            .current_leader
            .and_then(|id| membership.get_node(&id))
            .map(|member| member.addr.clone()),
        elected: m.state == ServerState::Leader && m.current_leader == Some(me),
        acknowledged_ms: m.millis_since_quorum_ack,
        voters: membership.voter_ids().count(),
        stopped: m.running_state.as_ref().err().map(ToString::to_string),
    }
}

/// Runs until `shutdown`. `trouble`: a proposal failed, so the engine must rebuild.
pub async fn watch(
    raft: openraft::Raft<TypeConfig>,
    link: Link,
    me: NodeId,
    trouble: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut metrics = raft.metrics();
    let replica = &link.replica;
    loop {
        let mut rebuild = false;
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
            () = trouble.notified() => rebuild = true,
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
        let now = seen(&raft, me);
        if let Some(why) = now.stopped {
            let refusal = Refusal::NoQuorum(format!(
                "this member's part of the failover network stopped ({why}); restart it"
            ));
            tracing::error!(error = %why, "this member's Raft stopped; it decides nothing until restarted");
            let _gate = link.gate.lock().await;
            if replica.leads()
                && let Err(e) = replica.follow(refusal.clone()).await
            {
                tracing::error!(error = format!("{e:#}"), "cannot rebuild the engine");
            }
            replica.pause(refusal);
            return;
        }
        if replica.leads() {
            if !now.elected || rebuild {
                let why = if now.elected {
                    "a change was not committed; the coordinator is catching up".to_owned()
                } else {
                    "this member stopped coordinating".to_owned()
                };
                let _gate = link.gate.lock().await;
                match replica.follow(Refusal::NoQuorum(why.clone())).await {
                    Ok(seq) => tracing::info!(ledger = seq, "{why}; rebuilt from the ledger"),
                    Err(e) => tracing::error!(
                        error = format!("{e:#}"),
                        "cannot rebuild the engine from the ledger"
                    ),
                }
                continue;
            }
            let lease = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
            match now.acknowledged_ms {
                Some(ms) if ms <= lease || now.voters <= 1 => replica.unpause(),
                None if now.voters <= 1 => replica.unpause(),
                _ => replica.pause(Refusal::NoQuorum(format!(
                    "the coordinator has not heard from a majority of the members for over {} ms",
                    LEASE.as_millis()
                ))),
            }
        } else if now.elected {
            replica.pause(Refusal::NoQuorum(
                "this member was elected coordinator and is confirming its majority".to_owned(),
            ));
            let confirmed = tokio::select! {
                () = shutdown.cancelled() => return,
                confirmed = tokio::time::timeout(CATCH_UP, raft.ensure_linearizable()) => confirmed,
            };
            if matches!(confirmed, Ok(Ok(_))) {
                let _gate = link.gate.lock().await;
                if seen(&raft, me).elected {
                    let epoch = replica.lead();
                    tracing::info!(epoch, "this member is the coordinator");
                }
            }
        } else {
            replica.pause(match now.coordinator {
                Some(coordinator) if coordinator != me => Refusal::Following(format!(
                    "the coordinator is the member at {}",
                    now.coordinator_addr
                        .unwrap_or_else(|| coordinator.to_string())
                )),
                _ => Refusal::NoQuorum(
                    "no coordinator: fewer than a majority of the failover network's members \
                     answer, or they are electing one"
                        .to_owned(),
                ),
            });
        }
    }
}
