//! The engine as a member of a failover network.
//!
//! Only the coordinator's engine decides ([`Role::Leading`]): it applies each decision in memory
//! and queues it, as a single server does; its writer's queue goes into the replicated log
//! instead of its own store, and a decision is acknowledged once a majority of the members holds
//! it and this member applied it. Every other member's engine follows ([`Role::Following`]): it
//! decides nothing, and applies every entry the log commits ([`Engine::apply_replicated`]), so
//! that its status page shows the network's sessions and it is ready to take over.
//!
//! **The coordinator's own entries** come back applied too; it skips those of its current epoch
//! (they are in memory already) and applies anything else. Its memory runs ahead of the log
//! (decisions not yet committed), so when it stops coordinating, or another coordinator's entry
//! reaches it while it thinks it leads, that memory cannot be trusted: it rebuilds its state from
//! its own ledger, which holds exactly what was committed and applied, and follows
//! ([`Engine::follow`]); whatever it had queued and not proposed is refused (a new writer
//! generation). Its decisions that a majority did hold reach it again, as another coordinator's.
//!
//! **Taking over** ([`Engine::lead`]) needs no rebuild: a follower's state is what the log
//! committed, and its member starts coordinating only once it has applied everything the log
//! committed before (Raft's read index). Running sessions then count as heard from just now, as
//! after a restart: heartbeats went to the old coordinator.
//!
//! **Heartbeats stay out of the log.** A follower checks a session's token and status against
//! its own copy of the state, answers at once, and notes the session; its member tells the
//! coordinator which sessions it heard from in batches ([`Engine::take_heard`], [`Engine::heard`]),
//! so the coordinator alone drops the silent ones.

use std::mem;

use models::SessionStatus;
use time::OffsetDateTime;

use super::{
    error::EngineError,
    machine::{Engine, rebuild},
    state::Role,
};
use crate::ledger::{Event, Refusal};

/// A ledger entry the replicated log committed: its number here, its time and its event.
pub type Replicated = (u64, OffsetDateTime, Event);

impl Engine {
    /// What this engine is in a failover network.
    pub fn role(&self) -> Role {
        self.lock().role
    }

    /// Whether this engine decides: a single server's, or the coordinator's once it has caught up.
    pub fn decides(&self) -> bool {
        self.role() != Role::Following
    }

    /// Applies the entries the replicated log committed and this member's store just appended.
    /// `mine`: the epoch they were proposed in, when this member proposed them. An entry of
    /// another coordinator while this one leads means it no longer does: it follows, rebuilt.
    pub async fn apply_replicated(
        &self,
        mine: Option<u64>,
        entries: &[Replicated],
    ) -> anyhow::Result<()> {
        let foreign = {
            let mut state = self.lock();
            let skip = matches!(state.role, Role::Leading(epoch) if mine == Some(epoch));
            if matches!(state.role, Role::Leading(_)) && !skip {
                true
            } else {
                for (seq, at, event) in entries {
                    if *seq <= state.applied_seq {
                        continue;
                    }
                    if !skip {
                        state.apply(*at, event, self.config.keep_ended);
                    }
                    state.applied_seq = *seq;
                }
                if !skip {
                    self.changes.bump();
                    self.writer.set_committed(state.applied_seq);
                }
                false
            }
        };
        if foreign {
            self.follow(Refusal::NoQuorum(
                "another member became the coordinator; this one is catching up".to_owned(),
            ))
            .await?;
        }
        Ok(())
    }

    /// Stops deciding (refused with `refusal` from now on), and rebuilds the state from this
    /// member's ledger: what the log committed, without the decisions still in flight. The entry
    /// the state now covers.
    pub async fn follow(&self, refusal: Refusal) -> anyhow::Result<u64> {
        self.writer.refuse(refusal);
        self.writer.new_generation();
        let store = self.writer.store();
        let restored = rebuild(&store, &self.snapshots.signer, self.config.keep_ended).await?;
        let (mut fresh, tail) = (restored.state, restored.tail.0);
        let now = self.now();
        let mut state = self.lock();
        fresh.carry_heartbeats(&state, now);
        fresh.role = Role::Following;
        fresh.applied_seq = tail;
        // The old state's waiters go with it: their requests hear that this member no longer
        // decides, and their clients ask again.
        let _old = mem::replace(&mut *state, fresh);
        self.changes.bump();
        self.writer.set_committed(tail);
        self.snapshots
            .rebuilt
            .store(tail, std::sync::atomic::Ordering::SeqCst);
        Ok(tail)
    }

    /// Starts deciding, as the coordinator that applied everything committed before it: the
    /// epoch its proposals carry.
    pub fn lead(&self) -> u64 {
        let mut state = self.lock();
        let epoch = self.writer.new_generation();
        state.role = Role::Leading(epoch);
        let now = self.now();
        for session in state.sessions.values_mut() {
            if session.status == SessionStatus::Running {
                session.last_heartbeat = now;
            }
        }
        self.heard.lock().clear();
        self.writer.set_committed(state.applied_seq);
        self.writer.accept();
        epoch
    }

    /// Refuses changes for now, with `refusal`'s reason, without giving up what is in flight:
    /// the coordinator that lost its majority for a moment, or a follower whose coordinator
    /// changed.
    pub fn pause(&self, refusal: Refusal) {
        if self.writer.refusal().as_ref() != Some(&refusal) {
            self.writer.refuse(refusal);
        }
    }

    /// Takes changes again after [`Engine::pause`], if this engine leads.
    pub fn unpause(&self) {
        let state = self.lock();
        if matches!(state.role, Role::Leading(_)) && self.writer.has_failed() {
            self.writer.accept();
        }
    }

    /// Records `event`, which changes nothing the engine keeps (an entry of another table's
    /// change, from a member's outbox), as the coordinator.
    pub fn record_outside(
        &self,
        at: OffsetDateTime,
        event: Event,
    ) -> Result<crate::ledger::Commit, EngineError> {
        let outside = matches!(
            event,
            Event::LicenseInstalled { .. }
                | Event::LicenseRemoved { .. }
                | Event::ServerMoved { .. }
                | Event::CartridgeAssigned { .. }
                | Event::AdminUserChanged { .. }
                | Event::LicensedUsersCleared { .. }
                | Event::NetworkChanged { .. }
        );
        if !outside {
            return Err(EngineError::NotOutside(event.kind()));
        }
        self.check_writable()?;
        let mut state = self.lock();
        Ok(self.record(&mut state, at, event))
    }

    /// The sessions heard from on this member since the last call (a follower's).
    pub fn take_heard(&self) -> Vec<u64> {
        self.heard.lock().drain().collect()
    }

    /// Puts sessions back to tell the coordinator later (the last batch did not reach it).
    pub fn keep_heard(&self, sessions: &[u64]) {
        self.heard.lock().extend(sessions.iter().copied());
    }

    /// Another member heard from these sessions (the coordinator's): they are alive as of now.
    pub fn heard(&self, sessions: &[u64]) {
        let now = self.now();
        let mut state = self.lock();
        for id in sessions {
            if let Some(session) = state.sessions.get_mut(id)
                && session.status == SessionStatus::Running
            {
                session.last_heartbeat = now;
            }
        }
    }
}
