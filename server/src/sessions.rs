//! The license engine: sessions, grants, waiting requests, heartbeats, and the statistics the
//! status page shows.
//!
//! **State is a fold of the ledger.** Everything here changes only through [`State::apply`] of a
//! ledger [`Event`]. A live request decides under the engine's lock, applies the event in memory
//! and queues it to the ledger writer *under the same lock*, so the ledger's order is the order of
//! the decisions; then, outside the lock, it waits until the event is durable before answering. At
//! start, replaying the ledger through the same `apply` rebuilds exactly this state. Seats are
//! counted in memory under the lock, so two requests can never take the same seat, and the lock
//! is never held across an `.await`.
//!
//! **Waiting costs nothing.** A request that finds no free license parks a oneshot sender in a FIFO
//! queue and sleeps on the receiver. Whatever frees capacity (a release, a session ending, a new
//! license, the periodic tick) serves the queue in order, under the lock, before any newcomer can
//! look: first come, first served.
//!
//! **Heartbeats are not in the ledger** (they would be most of it). After a restart, running
//! sessions count as having sent a heartbeat at the start, so clients that keep going are not
//! dropped by the restart.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use models::{
    Cartridge, Granted, HeldLicense, LicenseType, OpenSession, RequestLicense, RequestType,
    SessionClosed, SessionOpened, SessionStatus,
};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{
    cartridges,
    error::AppError,
    inventory::{Inventory, Snapshot},
    ledger::{self, Commit, Entry, Event, LedgerError, ReleasedLicense, Writer},
    pool,
    store::Store,
};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub heartbeat_interval: Duration,
    /// A session without a heartbeat for this long is dropped.
    pub timeout: Duration,
    /// How long a license request waits when it does not say.
    pub default_wait: Duration,
    /// The longest wait a request may ask for.
    pub max_wait: Duration,
    /// Ended sessions kept in memory (and on the status page); the ledger keeps them all.
    pub keep_ended: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            default_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(3600),
            keep_ended: 10_000,
        }
    }
}

/// A cartridge as statistics see it: pool, product, major version.
type CartridgeKey = (Option<String>, u32, u32);

/// Longest request id; ids are the client's, and memory is ours.
const MAX_REQUEST_ID: usize = 128;
/// Longest host name or message a session may carry.
const MAX_TEXT: usize = 1024;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub runcount_in_use: u32,
    pub runcount_grants: u64,
    pub credit_grants: u64,
    pub failed: u64,
    pub used_credits: i64,
    pub sessions_dropped: u64,
}

#[derive(Debug)]
struct SessionState {
    host: String,
    ip_address: IpAddr,
    started: OffsetDateTime,
    message: String,
    pool: Option<String>,
    status: SessionStatus,
    last_heartbeat: OffsetDateTime,
    /// License ids held right now, in grant order.
    held: Vec<u64>,
    /// request_id → license_id, for idempotent retries.
    requests: HashMap<String, u64>,
    /// Every license ever granted to this session, to forget them with the session.
    granted: Vec<u64>,
}

#[derive(Debug, Clone)]
struct GrantState {
    session_id: u64,
    key: CartridgeKey,
    product: String,
    license_type: LicenseType,
    granted: OffsetDateTime,
    /// Credits debited at release; `None` while held.
    released: Option<u64>,
}

impl GrantState {
    fn answer(&self, license_id: u64) -> Granted {
        Granted {
            license_id,
            product_id: self.key.1,
            major_version: self.key.2,
            product: self.product.clone(),
            license_type: self.license_type,
        }
    }

    /// `max(1, ceil(seconds held))` for credits; nothing for runcount.
    fn credits_until(&self, end: OffsetDateTime) -> u64 {
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

type Delivery = (Granted, Commit);

#[derive(Debug)]
struct Waiter {
    id: u64,
    session_id: u64,
    request: RequestLicense,
    sender: oneshot::Sender<Delivery>,
}

#[derive(Debug, Default)]
pub struct State {
    next_session: u64,
    next_license: u64,
    next_waiter: u64,
    sessions: BTreeMap<u64, SessionState>,
    grants: HashMap<u64, GrantState>,
    stats: HashMap<CartridgeKey, Stats>,
    waiters: VecDeque<Waiter>,
    /// Ended sessions, oldest first, so the oldest are forgotten first.
    ended: VecDeque<u64>,
}

impl State {
    /// Applies one ledger event. The only place state changes, live or in replay.
    pub fn apply(&mut self, at: OffsetDateTime, event: &Event, keep_ended: usize) {
        match event {
            Event::SessionOpened {
                session_id,
                host,
                ip_address,
                message,
                pool,
                user: _,
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
                        status: SessionStatus::Running,
                        last_heartbeat: at,
                        held: Vec::new(),
                        requests: HashMap::new(),
                        granted: Vec::new(),
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
                ..
            } => {
                let key = (pool.clone(), *product_id, *major_version);
                self.stats.entry(key).or_default().failed += 1;
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
                    self.ended.push_back(*session_id);
                }
                // Waiters of an ended session get nothing: dropping their senders tells them.
                self.waiters.retain(|w| w.session_id != *session_id);
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
            Event::LicenseInstalled { .. } | Event::CartridgeAssigned { .. } => {}
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

/// What a search for a license found.
enum Search {
    Found {
        key: CartridgeKey,
        product: String,
        license_type: LicenseType,
    },
    /// Cartridges exist for the request, all busy; refusals count against `first`.
    Busy {
        first: CartridgeKey,
    },
    /// The product has cartridges, but none for this version.
    NoVersion,
    UnknownProduct,
}

/// What a license request does next.
enum Step {
    Deliver(Granted, Commit),
    Wait(u64, oneshot::Receiver<Delivery>),
    Refuse(AppError, Commit),
}

#[derive(Debug)]
pub struct Engine {
    state: Mutex<State>,
    writer: Writer,
    inventory: Arc<Inventory>,
    config: EngineConfig,
    server_id: String,
}

impl Engine {
    /// Verifies the ledger's chain and replays it. A broken chain is an error naming the first bad
    /// entry: a server must not grant from a history someone has edited.
    pub async fn load(
        store: &Store,
        writer: Writer,
        inventory: Arc<Inventory>,
        config: EngineConfig,
        server_id: String,
    ) -> anyhow::Result<Self> {
        let mut state = State::default();
        let keep = config.keep_ended;
        let summary = ledger::verify(store, |entry: &Entry| state.apply(entry.at, &entry.event, keep))
            .await
            .map_err(|e| anyhow::anyhow!("the ledger in the store failed verification: {e:#}; the server will not start on a ledger that was tampered with"))?;
        let now = OffsetDateTime::now_utc();
        let mut running = 0;
        for session in state.sessions.values_mut() {
            if session.status == SessionStatus::Running {
                session.last_heartbeat = now;
                running += 1;
            }
        }
        tracing::info!(
            entries = summary.entries,
            running_sessions = running,
            "ledger verified and replayed"
        );
        Ok(Self {
            state: Mutex::new(state),
            writer,
            inventory,
            config,
            server_id,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied event: `apply` has no early
        // exits between related changes. Keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `event` in memory and queues it for the ledger, under the caller's lock.
    fn record(&self, state: &mut State, at: OffsetDateTime, event: Event) -> Commit {
        state.apply(at, &event, self.config.keep_ended);
        self.writer.append(at, &event)
    }

    fn check_writable(&self) -> Result<(), AppError> {
        if self.writer.has_failed() {
            Err(ledger_failed())
        } else {
            Ok(())
        }
    }

    pub async fn open_session(
        &self,
        request: OpenSession,
        ip_address: IpAddr,
    ) -> Result<SessionOpened, AppError> {
        self.check_writable()?;
        let host = request.host.trim();
        if host.is_empty() || host.len() > MAX_TEXT {
            return Err(AppError::bad_request(
                "INVALID_HOST",
                format!("host must be 1 to {MAX_TEXT} bytes"),
            ));
        }
        if request.message.len() > MAX_TEXT {
            return Err(AppError::bad_request(
                "INVALID_MESSAGE",
                format!("message must be at most {MAX_TEXT} bytes"),
            ));
        }
        let pool = match &request.pool {
            Some(name) => pool::check_name(name)
                .map_err(|why| AppError::bad_request("INVALID_POOL_ID", format!("pool: {why}")))?
                .map(str::to_owned),
            None => None,
        };
        let (session_id, commit) = {
            let mut state = self.lock();
            let session_id = state.next_session.max(1);
            let event = Event::SessionOpened {
                session_id,
                host: host.to_owned(),
                ip_address,
                message: request.message,
                pool,
                user: request.user,
            };
            (
                session_id,
                self.record(&mut state, OffsetDateTime::now_utc(), event),
            )
        };
        commit.durable().await.map_err(from_ledger)?;
        Ok(SessionOpened {
            session_id,
            server_id: self.server_id.clone(),
            heartbeat_interval_s: self.config.heartbeat_interval.as_secs(),
            timeout_s: self.config.timeout.as_secs(),
        })
    }

    pub async fn request_license(
        self: &Arc<Self>,
        session_id: u64,
        request: RequestLicense,
    ) -> Result<Granted, AppError> {
        self.check_writable()?;
        if request.request_id.is_empty() || request.request_id.len() > MAX_REQUEST_ID {
            return Err(AppError::bad_request(
                "INVALID_REQUEST_ID",
                format!("request_id must be 1 to {MAX_REQUEST_ID} bytes"),
            ));
        }
        let wait = request
            .wait_s
            .map_or(self.config.default_wait, Duration::from_secs)
            .min(self.config.max_wait);
        let step = {
            let mut state = self.lock();
            self.step(&mut state, session_id, request, !wait.is_zero())?
        };
        match step {
            Step::Deliver(granted, commit) => {
                commit.durable().await.map_err(from_ledger)?;
                Ok(granted)
            }
            Step::Refuse(error, commit) => {
                commit.durable().await.map_err(from_ledger)?;
                Err(error)
            }
            Step::Wait(waiter_id, mut receiver) => {
                // If the client goes away while waiting, its place in the queue goes too.
                let guard = WaitGuard {
                    engine: self,
                    waiter_id,
                };
                let delivered = match tokio::time::timeout(wait, &mut receiver).await {
                    Ok(Ok(delivery)) => delivery,
                    Ok(Err(_)) => {
                        drop(guard);
                        return Err(AppError::status(
                            axum::http::StatusCode::GONE,
                            "SESSION_ENDED",
                            "the session ended while the request was waiting (or a retry of the same request_id took its place)",
                        ));
                    }
                    Err(_elapsed) => {
                        let refused = {
                            let mut state = self.lock();
                            let position = state.waiters.iter().position(|w| w.id == waiter_id);
                            match position.and_then(|i| state.waiters.remove(i)) {
                                Some(waiter) => {
                                    Some(self.refuse(&mut state, &waiter.request, session_id))
                                }
                                None => None,
                            }
                        };
                        match refused {
                            Some((error, commit)) => {
                                commit.durable().await.map_err(from_ledger)?;
                                return Err(error);
                            }
                            // Granted at the last moment: the grant is in the channel.
                            None => match receiver.try_recv() {
                                Ok(delivery) => delivery,
                                Err(_) => return Err(session_gone()),
                            },
                        }
                    }
                };
                drop(guard);
                let (granted, commit) = delivered;
                commit.durable().await.map_err(from_ledger)?;
                Ok(granted)
            }
        }
    }

    /// Decides a request under the lock.
    fn step(
        &self,
        state: &mut State,
        session_id: u64,
        request: RequestLicense,
        may_wait: bool,
    ) -> Result<Step, AppError> {
        let now = OffsetDateTime::now_utc();
        let session = running_session(state, session_id)?;
        session.last_heartbeat = now;
        if let Some(license_id) = session.requests.get(&request.request_id).copied() {
            let granted = state
                .grants
                .get(&license_id)
                .map(|g| g.answer(license_id))
                .ok_or_else(session_gone)?;
            // The first answer may not be durable yet; this one must not be sent before it is.
            return Ok(Step::Deliver(granted, self.writer.barrier()));
        }
        // A retry of a request that is still waiting takes over its place in the queue.
        let next_waiter = state.next_waiter;
        if let Some(waiter) = state
            .waiters
            .iter_mut()
            .find(|w| w.session_id == session_id && w.request.request_id == request.request_id)
        {
            let (sender, receiver) = oneshot::channel();
            waiter.sender = sender;
            waiter.id = next_waiter;
            state.next_waiter += 1;
            return Ok(Step::Wait(next_waiter, receiver));
        }
        // Whoever waits comes first.
        let snapshot = self.inventory.snapshot();
        self.serve_waiters(state, &snapshot, now);
        let pool = state.sessions.get(&session_id).and_then(|s| s.pool.clone());
        match search(state, &snapshot, pool.as_deref(), &request, now) {
            Search::Found {
                key,
                product,
                license_type,
            } => {
                let (granted, commit) =
                    self.grant(state, session_id, &request, key, product, license_type, now);
                Ok(Step::Deliver(granted, commit))
            }
            Search::Busy { .. } if may_wait => {
                let (sender, receiver) = oneshot::channel();
                let id = state.next_waiter;
                state.next_waiter += 1;
                state.waiters.push_back(Waiter {
                    id,
                    session_id,
                    request,
                    sender,
                });
                Ok(Step::Wait(id, receiver))
            }
            _ => {
                let (error, commit) = self.refuse(state, &request, session_id);
                Ok(Step::Refuse(error, commit))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn grant(
        &self,
        state: &mut State,
        session_id: u64,
        request: &RequestLicense,
        key: CartridgeKey,
        product: String,
        license_type: LicenseType,
        now: OffsetDateTime,
    ) -> Delivery {
        let license_id = state.next_license.max(1);
        let event = Event::LicenseGranted {
            session_id,
            license_id,
            request_id: request.request_id.clone(),
            product_id: key.1,
            major_version: key.2,
            product: product.clone(),
            license_type,
            pool: key.0.clone(),
        };
        let commit = self.record(state, now, event);
        let granted = Granted {
            license_id,
            product_id: key.1,
            major_version: key.2,
            product,
            license_type,
        };
        (granted, commit)
    }

    /// Records a refusal (a `failed` for the cartridge asked for first) and says why.
    fn refuse(
        &self,
        state: &mut State,
        request: &RequestLicense,
        session_id: u64,
    ) -> (AppError, Commit) {
        let now = OffsetDateTime::now_utc();
        let snapshot = self.inventory.snapshot();
        let pool = state.sessions.get(&session_id).and_then(|s| s.pool.clone());
        let (error, key) = match search(state, &snapshot, pool.as_deref(), request, now) {
            Search::UnknownProduct => (
                AppError::status(
                    axum::http::StatusCode::NOT_FOUND,
                    "UNKNOWN_PRODUCT",
                    format!(
                        "no license for product {} in {}",
                        request.product_id,
                        pool_label(pool.as_deref())
                    ),
                ),
                (pool.clone(), request.product_id, request.major_version),
            ),
            Search::NoVersion => (
                no_license(format!(
                    "no license of product {} covers version {} in {}",
                    request.product_id,
                    request.major_version,
                    pool_label(pool.as_deref())
                )),
                (pool.clone(), request.product_id, request.major_version),
            ),
            Search::Busy { first } | Search::Found { key: first, .. } => (
                no_license(format!(
                    "every license for product {} version {} in {} is in use",
                    request.product_id,
                    request.major_version,
                    pool_label(pool.as_deref())
                )),
                first,
            ),
        };
        let event = Event::LicenseRefused {
            session_id,
            product_id: key.1,
            major_version: key.2,
            pool: key.0,
        };
        (error, self.record(state, now, event))
    }

    /// Grants to waiters, oldest first, whatever is free now.
    fn serve_waiters(&self, state: &mut State, snapshot: &Snapshot, now: OffsetDateTime) {
        let mut i = 0;
        while i < state.waiters.len() {
            if state.waiters[i].sender.is_closed() {
                state.waiters.remove(i);
                continue;
            }
            let session_id = state.waiters[i].session_id;
            let pool = state.sessions.get(&session_id).and_then(|s| s.pool.clone());
            let found = match search(
                state,
                snapshot,
                pool.as_deref(),
                &state.waiters[i].request,
                now,
            ) {
                Search::Found {
                    key,
                    product,
                    license_type,
                } => Some((key, product, license_type)),
                _ => None,
            };
            match found {
                Some((key, product, license_type)) => {
                    let Some(waiter) = state.waiters.remove(i) else {
                        break;
                    };
                    let delivery = self.grant(
                        state,
                        session_id,
                        &waiter.request,
                        key,
                        product,
                        license_type,
                        now,
                    );
                    // A waiter that left after the check keeps its grant: a retry with the same
                    // request_id gets it, and closing the session releases it.
                    let _ = waiter.sender.send(delivery);
                }
                None => i += 1,
            }
        }
    }

    pub async fn release(&self, session_id: u64, license_id: u64) -> Result<u64, AppError> {
        self.check_writable()?;
        let (credits, commit) = {
            let mut state = self.lock();
            let now = OffsetDateTime::now_utc();
            let Some(grant) = state.grants.get(&license_id).cloned() else {
                return Err(AppError::status(
                    axum::http::StatusCode::NOT_FOUND,
                    "UNKNOWN_LICENSE",
                    format!("no license {license_id}"),
                ));
            };
            if grant.session_id != session_id {
                return Err(AppError::status(
                    axum::http::StatusCode::NOT_FOUND,
                    "UNKNOWN_LICENSE",
                    format!("license {license_id} does not belong to session {session_id}"),
                ));
            }
            if let Some(credits) = grant.released {
                // Releasing twice is harmless: the same answer, after the first is durable.
                (credits, self.writer.barrier())
            } else {
                if let Some(session) = state.sessions.get_mut(&session_id) {
                    session.last_heartbeat = now;
                }
                let credits = grant.credits_until(now);
                let commit = self.record(
                    &mut state,
                    now,
                    Event::LicenseReleased {
                        license_id,
                        credits_used: credits,
                    },
                );
                let snapshot = self.inventory.snapshot();
                self.serve_waiters(&mut state, &snapshot, now);
                (credits, commit)
            }
        };
        commit.durable().await.map_err(from_ledger)?;
        Ok(credits)
    }

    pub fn heartbeat(&self, session_id: u64) -> Result<(), AppError> {
        let mut state = self.lock();
        let session = running_session(&mut state, session_id)?;
        session.last_heartbeat = OffsetDateTime::now_utc();
        Ok(())
    }

    /// Ends a session and releases what it holds. `by`: who, when not the client.
    pub async fn close(
        &self,
        session_id: u64,
        by: Option<String>,
    ) -> Result<SessionClosed, AppError> {
        self.check_writable()?;
        let (closed, commit) = {
            let mut state = self.lock();
            let Some(session) = state.sessions.get(&session_id) else {
                return Err(unknown_session(session_id));
            };
            if session.status != SessionStatus::Running {
                // Closing twice is harmless too.
                let answer = SessionClosed {
                    session_id,
                    status: session.status,
                    credits_used: 0,
                };
                (answer, self.writer.barrier())
            } else {
                let now = OffsetDateTime::now_utc();
                let (answer, commit) = self.end(
                    &mut state,
                    session_id,
                    SessionStatus::Finished,
                    now,
                    now,
                    by,
                );
                (answer, commit)
            }
        };
        commit.durable().await.map_err(from_ledger)?;
        Ok(closed)
    }

    /// Ends a running session: releases its licenses (credits up to `charge_until`).
    fn end(
        &self,
        state: &mut State,
        session_id: u64,
        status: SessionStatus,
        charge_until: OffsetDateTime,
        now: OffsetDateTime,
        by: Option<String>,
    ) -> (SessionClosed, Commit) {
        let held = state
            .sessions
            .get(&session_id)
            .map(|s| s.held.clone())
            .unwrap_or_default();
        let released: Vec<ReleasedLicense> = held
            .iter()
            .filter_map(|id| {
                let grant = state.grants.get(id)?;
                Some(ReleasedLicense {
                    license_id: *id,
                    credits_used: grant.credits_until(charge_until.max(grant.granted)),
                })
            })
            .collect();
        let credits_used = released.iter().map(|r| r.credits_used).sum();
        let commit = self.record(
            state,
            now,
            Event::SessionClosed {
                session_id,
                status,
                released,
                by,
            },
        );
        let snapshot = self.inventory.snapshot();
        self.serve_waiters(state, &snapshot, now);
        (
            SessionClosed {
                session_id,
                status,
                credits_used,
            },
            commit,
        )
    }

    /// Drops the sessions whose heartbeats stopped, and serves waiters with whatever changed
    /// (licenses installed or expired, pools reassigned). Runs every second.
    pub fn tick(&self) -> Vec<Commit> {
        if self.writer.has_failed() {
            return Vec::new();
        }
        let now = OffsetDateTime::now_utc();
        let timeout = time::Duration::try_from(self.config.timeout).unwrap_or(time::Duration::MAX);
        let mut state = self.lock();
        let silent: Vec<(u64, OffsetDateTime)> = state
            .sessions
            .iter()
            .filter(|(_, s)| s.status == SessionStatus::Running && now - s.last_heartbeat > timeout)
            .map(|(id, s)| (*id, s.last_heartbeat))
            .collect();
        let mut commits = Vec::new();
        for (session_id, last_heartbeat) in silent {
            tracing::info!(
                session_id,
                "session dropped: no heartbeat for {} s",
                self.config.timeout.as_secs()
            );
            let (_, commit) = self.end(
                &mut state,
                session_id,
                SessionStatus::Dropped,
                last_heartbeat,
                now,
                Some("heartbeat timeout".to_owned()),
            );
            commits.push(commit);
        }
        let snapshot = self.inventory.snapshot();
        self.serve_waiters(&mut state, &snapshot, now);
        commits
    }

    /// Runs [`Engine::tick`] every second until `shutdown`.
    pub async fn run_ticks(self: Arc<Self>, shutdown: CancellationToken) {
        let period =
            (self.config.timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {
                    for commit in self.tick() {
                        if let Err(e) = commit.durable().await {
                            tracing::error!(error = %e, "cannot record a dropped session");
                        }
                    }
                }
            }
        }
    }

    /// Adds the statistics to `cartridges` of `pool`.
    pub fn fill_statistics(&self, cartridges: &mut [Cartridge], pool: Option<&str>) {
        let state = self.lock();
        for cartridge in cartridges {
            let key = (
                pool.map(str::to_owned),
                cartridge.product_id,
                cartridge.major_version,
            );
            if let Some(stats) = state.stats.get(&key) {
                let s = &mut cartridge.statistic;
                s.licenses.runcount = stats.runcount_grants;
                s.licenses.credits = stats.credit_grants;
                s.licenses.failed = stats.failed;
                s.used_credits = stats.used_credits;
                s.remaining_credits = cartridge.credits.saturating_sub(stats.used_credits);
                s.runcount_in_use = stats.runcount_in_use;
                s.sessions_dropped = stats.sessions_dropped;
            }
        }
    }

    /// Sessions of `pool`, newest first.
    pub fn sessions(&self, pool: Option<&str>) -> Vec<models::Session> {
        let state = self.lock();
        state
            .sessions
            .iter()
            .rev()
            .filter(|(_, s)| s.pool.as_deref() == pool)
            .map(|(id, s)| models::Session {
                server_id: self.server_id.clone(),
                session_id: *id,
                status: s.status,
                host: s.host.clone(),
                ip_address: s.ip_address,
                started: s.started.replace_nanosecond(0).unwrap_or(s.started),
                message: s.message.clone(),
                licenses: s
                    .held
                    .iter()
                    .filter_map(|id| state.grants.get(id))
                    .map(|g| HeldLicense {
                        product_id: g.key.1,
                        major_version: g.key.2,
                        product: g.product.clone(),
                        license_type: g.license_type,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Statistics of one cartridge (for tests and tools).
    pub fn stats(&self, pool: Option<&str>, product_id: u32, major_version: u32) -> Stats {
        let key = (pool.map(str::to_owned), product_id, major_version);
        self.lock().stats.get(&key).cloned().unwrap_or_default()
    }
}

/// Removes a waiter whose request went away (client disconnected, or the handler returned).
struct WaitGuard<'a> {
    engine: &'a Engine,
    waiter_id: u64,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.engine.lock();
        state.waiters.retain(|w| w.id != self.waiter_id);
    }
}

/// Finds a license for `request` in `pool`: runcount before credits (for `all`); within a type
/// the requested major version, then newer ones ascending, then 0 (any version).
fn search(
    state: &State,
    snapshot: &Snapshot,
    pool: Option<&str>,
    request: &RequestLicense,
    now: OffsetDateTime,
) -> Search {
    let cartridges: Vec<Cartridge> = cartridges::of_pool(snapshot, pool, now)
        .into_iter()
        .filter(|c| c.product_id == request.product_id)
        .collect();
    if cartridges.is_empty() {
        return Search::UnknownProduct;
    }
    let wanted = request.major_version;
    let mut candidates: Vec<&Cartridge> = cartridges
        .iter()
        .filter(|c| c.major_version == wanted || (wanted != 0 && c.major_version > wanted))
        .collect();
    candidates.sort_by_key(|c| c.major_version);
    if wanted != 0 {
        candidates.extend(cartridges.iter().filter(|c| c.major_version == 0));
    }
    let Some(first) = candidates.first() else {
        return Search::NoVersion;
    };
    let types: &[LicenseType] = match request.request_type {
        RequestType::All => &[LicenseType::Runcount, LicenseType::Credits],
        RequestType::Runcount => &[LicenseType::Runcount],
        RequestType::Credits => &[LicenseType::Credits],
    };
    let key_of = |c: &Cartridge| (pool.map(str::to_owned), c.product_id, c.major_version);
    for license_type in types {
        for cartridge in &candidates {
            let stats = state.stats.get(&key_of(cartridge));
            let free = match license_type {
                LicenseType::Runcount => {
                    cartridge.runcount > stats.map_or(0, |s| s.runcount_in_use)
                }
                LicenseType::Credits => {
                    cartridge.postpay || cartridge.credits - stats.map_or(0, |s| s.used_credits) > 0
                }
            };
            if free {
                return Search::Found {
                    key: key_of(cartridge),
                    product: cartridge.product.clone(),
                    license_type: *license_type,
                };
            }
        }
    }
    Search::Busy {
        first: key_of(first),
    }
}

fn running_session(state: &mut State, session_id: u64) -> Result<&mut SessionState, AppError> {
    match state.sessions.get_mut(&session_id) {
        None => Err(unknown_session(session_id)),
        Some(session) if session.status != SessionStatus::Running => Err(AppError::status(
            axum::http::StatusCode::GONE,
            "SESSION_ENDED",
            format!(
                "session {session_id} is {}; open a new session",
                match session.status {
                    SessionStatus::Dropped => "dropped (no heartbeat in time)",
                    _ => "finished",
                }
            ),
        )),
        Some(session) => Ok(session),
    }
}

fn unknown_session(session_id: u64) -> AppError {
    AppError::status(
        axum::http::StatusCode::NOT_FOUND,
        "UNKNOWN_SESSION",
        format!("no session {session_id}"),
    )
}

fn session_gone() -> AppError {
    AppError::status(
        axum::http::StatusCode::GONE,
        "SESSION_ENDED",
        "the session ended",
    )
}

fn no_license(message: String) -> AppError {
    AppError::status(
        axum::http::StatusCode::CONFLICT,
        "NO_LICENSE_AVAILABLE",
        message,
    )
}

fn pool_label(pool: Option<&str>) -> String {
    match pool {
        Some(pool) => format!("pool {pool:?}"),
        None => "the default pool".to_owned(),
    }
}

fn ledger_failed() -> AppError {
    AppError::status(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "LEDGER_UNAVAILABLE",
        "the server cannot record changes right now; the administrator has been told in the log",
    )
}

fn from_ledger(error: LedgerError) -> AppError {
    tracing::error!(error = %error, "ledger write failed");
    ledger_failed()
}
