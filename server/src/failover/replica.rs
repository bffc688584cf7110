//! What the failover network needs of the license engine it replicates into: the state machine
//! hands it what the log committed, the leadership watch tells it when to decide and when to
//! follow, and the members' relays pass heartbeats and side entries through it. Defined here and
//! implemented over the engine by the composition root, so this room knows nothing of the engine.

use std::{future::Future, pin::Pin, sync::Arc};

use time::OffsetDateTime;

use crate::ledger::{Commit, Event, Refusal};

/// A future the trait's methods return (they are called through `dyn Replica`).
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A ledger entry the replicated log committed: its number in this member's ledger, its time and
/// its event.
pub type Replicated = (u64, OffsetDateTime, Event);

pub trait Replica: Send + Sync + std::fmt::Debug + 'static {
    /// The entries one log entry appended to this member's ledger; `mine`: the epoch it was
    /// proposed in, when this member proposed it.
    fn applied<'a>(
        &'a self,
        mine: Option<u64>,
        entries: &'a [Replicated],
    ) -> Boxed<'a, anyhow::Result<()>>;

    /// Applies to this member's licenses, pools and network id the entries of a snapshot it
    /// installed that change them ([`crate::ledger::event::INVENTORY_KINDS`]), in order.
    fn caught_up<'a>(
        &'a self,
        entries: &'a [(OffsetDateTime, Event)],
    ) -> Boxed<'a, anyhow::Result<()>>;

    /// Stops deciding (refusing with `refusal`) and rebuilds from this member's ledger.
    fn follow(&self, refusal: Refusal) -> Boxed<'_, anyhow::Result<u64>>;

    /// Starts deciding, as the coordinator that applied everything committed before: the epoch
    /// its proposals carry.
    fn lead(&self) -> u64;

    /// Whether it decides as the coordinator now.
    fn leads(&self) -> bool;

    /// Refuses changes for now, keeping what is in flight.
    fn pause(&self, refusal: Refusal);

    /// Takes changes again after a pause, if it leads.
    fn unpause(&self);

    /// Records `event` as the coordinator (an entry of another table's change, from a member's
    /// outbox).
    fn record(&self, at: OffsetDateTime, event: Event) -> anyhow::Result<Commit>;

    /// The sessions heard from on this member since the last call.
    fn take_heard(&self) -> Vec<u64>;

    /// Puts sessions back to tell the coordinator later.
    fn keep_heard(&self, sessions: &[u64]);

    /// Another member heard from these sessions (on the coordinator).
    fn heard(&self, sessions: &[u64]);
}

/// How the state machine reaches the engine, and the gate that keeps applying entries and
/// rebuilding the engine's state from turns at the same time.
#[derive(Debug, Clone)]
pub struct Link {
    pub replica: Arc<dyn Replica>,
    pub gate: Arc<tokio::sync::Mutex<()>>,
}
