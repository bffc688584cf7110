//! The engine's state, and the one function that changes it: [`State::apply`] of a ledger
//! [`Event`]. Live requests and the replay at start go through the same `apply`, so what is in
//! memory is always what the ledger says.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::IpAddr,
};

use models::{
    FailedByReason, Granted, LicenseType, RefusalReason, RequestLicense, SessionStatus, User,
};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::{
    error::{Ended, EngineError},
    secrets,
};
use crate::ledger::{Commit, Event};

/// A cartridge as statistics see it: pool, product, major version.
pub type CartridgeKey = (Option<String>, u32, u32);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub runcount_in_use: u32,
    pub runcount_grants: u64,
    pub credit_grants: u64,
    pub failed: u64,
    /// `failed` by reason, for the reasons an existing cartridge is refused for.
    pub failed_by_reason: FailedByReason,
    pub used_credits: i64,
    pub sessions_dropped: u64,
}

#[derive(Debug)]
pub(super) struct SessionState {
    pub(super) host: String,
    pub(super) ip_address: IpAddr,
    pub(super) started: OffsetDateTime,
    pub(super) message: String,
    pub(super) pool: Option<String>,
    /// SHA-256 of the session's token; `None` for a session opened before tokens existed.
    pub(super) token_hash: Option<[u8; 32]>,
    /// The member of a failover network it was opened on; `None` on a single server.
    pub(super) server_id: Option<String>,
    pub(super) status: SessionStatus,
    pub(super) last_heartbeat: OffsetDateTime,
    /// License ids held right now, in grant order.
    pub(super) held: Vec<u64>,
    /// request_id → license_id, for idempotent retries.
    pub(super) requests: HashMap<String, u64>,
    /// Every license ever granted to this session, to forget them with the session.
    pub(super) granted: Vec<u64>,
    /// Who it runs for, if the vendor's program named someone.
    pub(super) user: Option<User>,
    /// When it ended; `None` while running (and for sessions that ended before this was kept).
    pub(super) ended: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub(super) struct GrantState {
    pub(super) session_id: u64,
    pub(super) key: CartridgeKey,
    pub(super) product: String,
    pub(super) license_type: LicenseType,
    pub(super) granted: OffsetDateTime,
    /// Credits debited at release; `None` while held.
    pub(super) released: Option<u64>,
}

impl GrantState {
    pub(super) fn answer(&self, license_id: u64) -> Granted {
        Granted {
            license_id,
            product_id: self.key.1,
            major_version: self.key.2,
            product: self.product.clone(),
            license_type: self.license_type,
        }
    }

    /// `max(1, ceil(seconds held))` for credits; nothing for runcount.
    pub(super) fn credits_until(&self, end: OffsetDateTime) -> u64 {
        match self.license_type {
            LicenseType::Runcount => 0,
            LicenseType::Credits => {
                let held = (end - self.granted).as_seconds_f64().ceil();
                // `as` saturates; a negative duration (clock stepped back) charges the minimum.
                (held as u64).max(1)
            }
        }
    }
}

pub(super) type Delivery = (Granted, Commit);

#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) id: u64,
    pub(super) session_id: u64,
    pub(super) request: RequestLicense,
    pub(super) sender: oneshot::Sender<Delivery>,
}

#[derive(Debug, Default)]
pub struct State {
    pub(super) next_session: u64,
    pub(super) next_license: u64,
    pub(super) next_waiter: u64,
    pub(super) sessions: BTreeMap<u64, SessionState>,
    pub(super) grants: HashMap<u64, GrantState>,
    pub(super) stats: HashMap<CartridgeKey, Stats>,
    pub(super) waiters: VecDeque<Waiter>,
    /// Ended sessions, oldest first, so the oldest are forgotten first.
    pub(super) ended: VecDeque<u64>,
    /// What the engine is in a failover network (not part of the fold).
    pub(super) role: Role,
    /// On a member of a failover network: the last ledger entry applied here from the
    /// replicated log (not part of the fold).
    pub(super) applied_seq: u64,
}

/// What the engine is in a failover network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// A server on its own: it decides, and its writer commits to its own store.
    #[default]
    Single,
    /// The coordinator's engine, in its `epoch`: it decides, and the entries it proposed come
    /// back applied, which it skips (they are in memory already).
    Leading(u64),
    /// Any other member's: it decides nothing, and applies what the coordinator decided.
    Following,
}

impl State {
    /// The session `session_id` if it is running; why not, if it is not.
    /// Whether `token` may act on the session: it is the session's own (see [`secrets`]). A call
    /// without a token is refused before anything is looked up.
    pub(super) fn authorize(
        &self,
        session_id: u64,
        token: Option<&str>,
    ) -> Result<(), EngineError> {
        match self.sessions.get(&session_id) {
            Some(session) => secrets::check(session.token_hash.as_ref(), token),
            None if token.is_none() => Err(EngineError::SessionTokenMissing),
            None => Err(EngineError::UnknownSession(session_id)),
        }
    }

    pub(super) fn running_mut(
        &mut self,
        session_id: u64,
    ) -> Result<&mut SessionState, EngineError> {
        match self.sessions.get_mut(&session_id) {
            None => Err(EngineError::UnknownSession(session_id)),
            Some(session) => match session.status {
                SessionStatus::Running => Ok(session),
                SessionStatus::Dropped => {
                    Err(EngineError::SessionEnded(Ended::Dropped(session_id)))
                }
                SessionStatus::Finished => {
                    Err(EngineError::SessionEnded(Ended::Finished(session_id)))
                }
            },
        }
    }

    /// Applies one ledger event. The only place state changes, live or in replay.
    pub fn apply(&mut self, at: OffsetDateTime, event: &Event, keep_ended: usize) {
        match event {
            Event::SessionOpened {
                session_id,
                host,
                ip_address,
                message,
                pool,
                user,
                token_sha256,
                server_id,
            } => {
                self.next_session = self.next_session.max(session_id + 1);
                self.sessions.insert(
                    *session_id,
                    SessionState {
                        host: host.clone(),
                        ip_address: *ip_address,
                        started: at,
                        message: message.clone(),
                        pool: pool.clone(),
                        token_hash: token_sha256.as_deref().and_then(secrets::from_hex),
                        server_id: server_id.clone(),
                        status: SessionStatus::Running,
                        last_heartbeat: at,
                        held: Vec::new(),
                        requests: HashMap::new(),
                        granted: Vec::new(),
                        user: user.clone(),
                        ended: None,
                    },
                );
            }
            Event::LicenseGranted {
                session_id,
                license_id,
                request_id,
                product_id,
                major_version,
                product,
                license_type,
                pool,
            } => {
                self.next_license = self.next_license.max(license_id + 1);
                let key = (pool.clone(), *product_id, *major_version);
                let stats = self.stats.entry(key.clone()).or_default();
                match license_type {
                    LicenseType::Runcount => {
                        stats.runcount_in_use += 1;
                        stats.runcount_grants += 1;
                    }
                    LicenseType::Credits => stats.credit_grants += 1,
                }
                self.grants.insert(
                    *license_id,
                    GrantState {
                        session_id: *session_id,
                        key,
                        product: product.clone(),
                        license_type: *license_type,
                        granted: at,
                        released: None,
                    },
                );
                if let Some(session) = self.sessions.get_mut(session_id) {
                    session.held.push(*license_id);
                    session.granted.push(*license_id);
                    session.requests.insert(request_id.clone(), *license_id);
                    session.last_heartbeat = session.last_heartbeat.max(at);
                }
            }
            Event::LicenseRefused {
                product_id,
                major_version,
                pool,
                reason,
                ..
            } => {
                let key = (pool.clone(), *product_id, *major_version);
                let stats = self.stats.entry(key).or_default();
                stats.failed += 1;
                let by = &mut stats.failed_by_reason;
                match reason {
                    Some(RefusalReason::NoSeatFree) => by.no_seat_free += 1,
                    Some(RefusalReason::WaitedOut) => by.waited_out += 1,
                    Some(RefusalReason::CreditsExhausted) => by.credits_exhausted += 1,
                    // No cartridge to count them for: they are in the ledger and its export.
                    Some(
                        RefusalReason::UnknownProduct
                        | RefusalReason::WrongPool
                        | RefusalReason::NoVersion
                        | RefusalReason::UserLimit,
                    )
                    | None => {}
                }
            }
            Event::LicenseReleased {
                license_id,
                credits_used,
            } => self.release(*license_id, *credits_used),
            Event::SessionClosed {
                session_id,
                status,
                released,
                by: _,
            } => {
                let mut dropped_from = Vec::new();
                for r in released {
                    if let Some(grant) = self.grants.get(&r.license_id)
                        && !dropped_from.contains(&grant.key)
                    {
                        dropped_from.push(grant.key.clone());
                    }
                    self.release(r.license_id, r.credits_used);
                }
                if *status == SessionStatus::Dropped {
                    for key in dropped_from {
                        self.stats.entry(key).or_default().sessions_dropped += 1;
                    }
                }
                if let Some(session) = self.sessions.get_mut(session_id) {
                    session.status = *status;
                    // Retries are answered for running sessions only: an ended session's request
                    // ids are dead weight in memory and in every snapshot.
                    session.requests = HashMap::new();
                    session.ended = Some(at);
                    self.ended.push_back(*session_id);
                }
                // Waiters of an ended session get nothing: dropping their senders tells them.
                self.waiters.retain(|w| w.session_id != *session_id);
                self.forget_ended(keep_ended);
            }
            // The inventory is the licenses directory's; the engine only counts what is held,
            // so a removed license's grants stay until they are released.
            Event::LicenseInstalled { .. }
            | Event::LicenseRemoved { .. }
            | Event::ServerMoved { .. }
            // A session that never opened: in the ledger and its export, not in the state.
            | Event::SessionRefused { .. }
            | Event::CartridgeAssigned { .. }
            | Event::AdminUserChanged { .. }
            | Event::LicensedUsersCleared { .. }
            | Event::NetworkChanged { .. } => {}
        }
    }

    /// Gives this state's running sessions (rebuilt from the ledger, which holds no heartbeats)
    /// the heartbeats `before` had heard from them; a session `before` did not have counts as
    /// heard from `now`.
    pub(super) fn carry_heartbeats(&mut self, before: &State, now: OffsetDateTime) {
        for (id, session) in &mut self.sessions {
            if session.status == SessionStatus::Running {
                session.last_heartbeat = before
                    .sessions
                    .get(id)
                    .map_or(now, |before| before.last_heartbeat);
            }
        }
    }

    /// Forgets the oldest ended sessions (and their grants) beyond the newest `keep_ended`.
    pub(super) fn forget_ended(&mut self, keep_ended: usize) {
        while self.ended.len() > keep_ended {
            if let Some(old) = self.ended.pop_front()
                && let Some(session) = self.sessions.remove(&old)
            {
                for id in session.granted {
                    self.grants.remove(&id);
                }
            }
        }
    }

    fn release(&mut self, license_id: u64, credits_used: u64) {
        let Some(grant) = self.grants.get_mut(&license_id) else {
            return;
        };
        if grant.released.is_some() {
            return;
        }
        grant.released = Some(credits_used);
        let stats = self.stats.entry(grant.key.clone()).or_default();
        match grant.license_type {
            LicenseType::Runcount => {
                stats.runcount_in_use = stats.runcount_in_use.saturating_sub(1)
            }
            LicenseType::Credits => {
                stats.used_credits = stats
                    .used_credits
                    .saturating_add(i64::try_from(credits_used).unwrap_or(i64::MAX));
            }
        }
        if let Some(session) = self.sessions.get_mut(&grant.session_id) {
            session.held.retain(|id| *id != license_id);
        }
    }
}
