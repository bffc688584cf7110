//! What a member passes on to the coordinator besides requests: the sessions it heard heartbeats
//! for, and the ledger entries in its outbox.
//!
//! **Heartbeats** ([`heartbeats`]) go in batches: every [`HEARTBEATS_EVERY`], the sessions heard
//! from since the last batch, once each, however many heartbeats they sent. 100,000 sessions make
//! one call a member every half second, not 10,000 log entries a second; the log never sees a
//! heartbeat. A batch that does not arrive is kept for the next.
//!
//! **The outbox** ([`outbox`]) holds the ledger rows of changes to a member's other tables (an
//! administrator added, a license installed), which its own ledger cannot take (only the
//! replicated log appends to it). They go to the coordinator in order, which records them as its
//! own decisions; once durable there, they leave the outbox. On the coordinator itself they are
//! recorded directly.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{
    network::{HEARTBEATS, Network, OUTBOX},
    replica::Replica,
};
use crate::{ledger::Event, store::Store, sys::timestamp::parse_rfc3339};

/// How often a member tells the coordinator which sessions it heard from.
pub const HEARTBEATS_EVERY: Duration = Duration::from_millis(500);
/// How often a member looks at its outbox.
const OUTBOX_EVERY: Duration = Duration::from_millis(250);
/// Outbox rows per call.
const OUTBOX_BATCH: u32 = 100;
/// How long a relay call may take.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a member sends with its heartbeats batch.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeardSessions {
    pub sessions: Vec<u64>,
}

/// What a member sends from its outbox: ledger rows as it stored them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxEntries {
    /// `(at, body)`: the time (RFC 3339) and the event's JSON.
    pub entries: Vec<(String, String)>,
}

impl OutboxEntries {
    /// The events, checked.
    pub fn events(&self) -> anyhow::Result<Vec<(time::OffsetDateTime, Event)>> {
        self.entries
            .iter()
            .map(|(at, body)| Ok((parse_rfc3339(at)?, serde_json::from_str(body)?)))
            .collect()
    }
}

/// Sends the sessions heard from to the coordinator until `shutdown`.
pub async fn heartbeats(
    network: Arc<Network>,
    replica: Arc<dyn Replica>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(HEARTBEATS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let sessions = replica.take_heard();
        if sessions.is_empty() {
            continue;
        }
        let sent = match network.coordinator() {
            Some(coordinator) if coordinator == network.me => {
                replica.heard(&sessions);
                true
            }
            Some(coordinator) => {
                let body = serde_json::to_vec(&HeardSessions {
                    sessions: sessions.clone(),
                })
                .unwrap_or_default();
                network
                    .call(coordinator, HEARTBEATS, body, RELAY_TIMEOUT)
                    .await
                    .is_ok()
            }
            None => false,
        };
        if !sent {
            replica.keep_heard(&sessions);
        }
    }
}

/// Passes the outbox's rows to the coordinator until `shutdown`.
pub async fn outbox(
    network: Arc<Network>,
    replica: Arc<dyn Replica>,
    store: Store,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(OUTBOX_EVERY) => {}
        }
        let rows = match store.outbox(OUTBOX_BATCH).await {
            Ok(rows) if !rows.is_empty() => rows,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                continue;
            }
        };
        let upto = rows.last().map_or(0, |r| r.0);
        let entries = OutboxEntries {
            entries: rows
                .into_iter()
                .map(|(_, at, _, body)| (at, body))
                .collect(),
        };
        let recorded = match network.coordinator() {
            Some(coordinator) if coordinator == network.me && replica.leads() => {
                record(replica.as_ref(), &entries).await
            }
            Some(coordinator) if coordinator != network.me => {
                let body = serde_json::to_vec(&entries).unwrap_or_default();
                network
                    .call(coordinator, OUTBOX, body, RELAY_TIMEOUT)
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from)
            }
            _ => continue,
        };
        match recorded {
            Ok(()) => {
                if let Err(e) = store.clear_outbox(upto).await {
                    tracing::warn!(error = %e, "cannot clear the outbox");
                }
            }
            Err(e) => tracing::debug!(error = format!("{e:#}"), "outbox not passed on yet"),
        }
    }
}

/// Records `entries` as the coordinator, durably.
pub async fn record(replica: &dyn Replica, entries: &OutboxEntries) -> anyhow::Result<()> {
    let commits = entries
        .events()?
        .into_iter()
        .map(|(at, event)| replica.record(at, event))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for commit in commits {
        commit.durable().await?;
    }
    Ok(())
}
