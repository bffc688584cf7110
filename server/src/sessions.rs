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
    SessionClosed, SessionOpened, SessionPage, SessionQuery, SessionStatus,
};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{
    browse,
    error::AppError,
    history::{self, History},
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
    pub clock: Clock,
}

/// Where the engine reads the time: the system clock, or a hand-set one for tests that need
/// minutes to pass in a millisecond.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<Mutex<OffsetDateTime>>),
}

impl Clock {
    pub fn manual(start: OffsetDateTime) -> Self {
        Self::Manual(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> OffsetDateTime {
        match self {
            Self::System => OffsetDateTime::now_utc(),
            Self::Manual(at) => *at.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        if let Self::Manual(at) = self {
            let mut at = at.lock().unwrap_or_else(|p| p.into_inner());
            *at += by;
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            default_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(3600),
            keep_ended: 10_000,
            clock: Clock::System,
        }
    }
}

/// A cartridge as statistics see it: pool, product, major version.
pub type CartridgeKey = (Option<String>, u32, u32);

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
            Event::LicenseInstalled { .. }
            | Event::CartridgeAssigned { .. }
            | Event::AdminUserChanged { .. }
            | Event::LicensedUsersCleared { .. } => {}
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
    /// The cartridges' recent past, sampled by `run_ticks` for the status page's charts.
    history: History,
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
        let now = config.clock.now();
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
            history: History::default(),
            writer,
            inventory,
            config,
            server_id,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn now(&self) -> OffsetDateTime {
        self.config.clock.now()
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
            (session_id, self.record(&mut state, self.now(), event))
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
        let now = self.now();
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
        let now = self.now();
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
            let now = self.now();
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
            if let Some(session) = state.sessions.get_mut(&session_id)
                && session.status == SessionStatus::Running
            {
                session.last_heartbeat = now;
            }
            if let Some(credits) = grant.released {
                // Releasing twice is harmless: the same answer, after the first is durable.
                (credits, self.writer.barrier())
            } else {
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
        settle(commit, credits).await?;
        Ok(credits)
    }

    pub fn heartbeat(&self, session_id: u64) -> Result<(), AppError> {
        let mut state = self.lock();
        let session = running_session(&mut state, session_id)?;
        session.last_heartbeat = self.now();
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
                let now = self.now();
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
        settle(commit, closed.credits_used).await?;
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
        let now = self.now();
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
        let mut sampling = tokio::time::interval(history::INTERVAL);
        sampling.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = sampling.tick() => self.history.record(self.now(), &self.all_stats()),
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
            .map(|(id, s)| self.session_model(&state, *id, s))
            .collect()
    }

    /// One page of the sessions of `pool`, filtered and sorted as `query` asks. The filtering
    /// borrows from the state under the lock; only the page's sessions are copied out.
    pub fn session_page(&self, pool: Option<&str>, query: &SessionQuery) -> SessionPage {
        let state = self.lock();
        let rows: Vec<browse::Row<'_>> = state
            .sessions
            .iter()
            .filter(|(_, s)| s.pool.as_deref() == pool)
            .map(|(id, s)| browse::Row {
                session_id: *id,
                status: s.status,
                host: &s.host,
                ip_address: s.ip_address,
                started: s.started,
                message: &s.message,
                products: s
                    .held
                    .iter()
                    .filter_map(|id| state.grants.get(id))
                    .map(|g| (g.key.1, g.product.as_str()))
                    .collect(),
            })
            .collect();
        let total = rows.len() as u64;
        let (matched, ids) = browse::select(rows, query);
        let sessions = ids
            .into_iter()
            .filter_map(|id| state.sessions.get(&id).map(|s| (id, s)))
            .map(|(id, s)| self.session_model(&state, id, s))
            .collect();
        SessionPage {
            total,
            matched,
            offset: query.offset,
            sessions,
        }
    }

    fn session_model(&self, state: &State, id: u64, s: &SessionState) -> models::Session {
        models::Session {
            server_id: self.server_id.clone(),
            session_id: id,
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
        }
    }

    /// The state of one session, if the server still keeps it.
    pub fn session_status(&self, session_id: u64) -> Option<SessionStatus> {
        self.lock().sessions.get(&session_id).map(|s| s.status)
    }

    /// The sampled history of the cartridges of `pool`, up to now.
    pub fn history(&self, pool: Option<&str>) -> models::History {
        self.history.chart(pool, self.now(), &self.all_stats())
    }

    /// The live counters of every cartridge of every pool, for the sampled history.
    pub fn all_stats(&self) -> Vec<(CartridgeKey, Stats)> {
        self.lock()
            .stats
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
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
    let all = snapshot.cartridges(pool, now);
    let cartridges: Vec<&Cartridge> = all
        .iter()
        .filter(|c| c.product_id == request.product_id)
        .collect();
    if cartridges.is_empty() {
        return Search::UnknownProduct;
    }
    let wanted = request.major_version;
    let mut candidates: Vec<&Cartridge> = cartridges
        .iter()
        .copied()
        .filter(|c| c.major_version == wanted || (wanted != 0 && c.major_version > wanted))
        .collect();
    candidates.sort_by_key(|c| c.major_version);
    if wanted != 0 {
        candidates.extend(cartridges.iter().copied().filter(|c| c.major_version == 0));
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

/// Waits until a release is durable when it debited credits. A release of runcount licenses only
/// is answered at once: it is in the ledger's queue, in order, and a crash that lost it would only
/// keep the seat taken until the session times out, never give one away twice. That halves the
/// fsyncs a client waits for in a runcount cycle.
async fn settle(commit: Commit, credits_used: u64) -> Result<(), AppError> {
    if credits_used > 0 {
        commit.durable().await.map_err(from_ledger)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    //! The engine against a reference model: random sequences of opens, requests, releases,
    //! heartbeats, closes and time passing, with the model predicting every answer and every
    //! statistic. Then the ledger is replayed into a new engine, which must agree.

    use std::collections::HashMap;

    use models::{License, ProductRule, Rules};
    use proptest::prelude::*;

    use super::*;
    use crate::{
        identity::ServerId,
        keys::{KeyPair, TrustedKeys},
        licenses::LicenseDir,
    };

    const RUNCOUNT: u32 = 2;
    const PREPAID: i64 = 5;
    const TIMEOUT_S: i64 = 30;

    #[derive(Debug, Clone)]
    enum Op {
        Open,
        Request {
            session: usize,
            request: u8,
            product: u32,
        },
        Release {
            session: usize,
            nth: usize,
        },
        Heartbeat {
            session: usize,
        },
        Close {
            session: usize,
        },
        Advance {
            secs: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::Open),
            6 => (0..6usize, 0..4u8, prop_oneof![Just(7u32), Just(9u32)])
                .prop_map(|(session, request, product)| Op::Request { session, request, product }),
            4 => (0..6usize, 0..4usize).prop_map(|(session, nth)| Op::Release { session, nth }),
            2 => (0..6usize).prop_map(|session| Op::Heartbeat { session }),
            1 => (0..6usize).prop_map(|session| Op::Close { session }),
            3 => prop_oneof![0..3u64, 10..40u64].prop_map(|secs| Op::Advance { secs }),
        ]
    }

    #[derive(Debug, Default)]
    struct MSession {
        id: u64,
        running: bool,
        last_hb: i64,
        held: Vec<u64>,
        granted: Vec<u64>,
        requests: HashMap<u8, u64>,
    }

    #[derive(Debug)]
    struct MGrant {
        product: u32,
        credits: bool,
        at: i64,
        released: Option<u64>,
    }

    #[derive(Debug, Default)]
    struct Model {
        t: i64,
        sessions: Vec<MSession>,
        grants: HashMap<u64, MGrant>,
        stats: HashMap<u32, Stats>,
    }

    impl Model {
        fn charge(&mut self, license_id: u64, until: i64) -> u64 {
            let grant = self.grants.get_mut(&license_id).unwrap();
            if let Some(credits) = grant.released {
                return credits;
            }
            let credits = if grant.credits {
                u64::try_from((until - grant.at).max(1)).unwrap()
            } else {
                0
            };
            grant.released = Some(credits);
            let stats = self.stats.entry(grant.product).or_default();
            if grant.credits {
                stats.used_credits += i64::try_from(credits).unwrap();
            } else {
                stats.runcount_in_use -= 1;
            }
            for s in &mut self.sessions {
                s.held.retain(|id| *id != license_id);
            }
            credits
        }

        fn end(&mut self, index: usize, until: i64, dropped: bool) {
            let held = self.sessions[index].held.clone();
            let mut products = Vec::new();
            for id in held {
                let product = self.grants[&id].product;
                if !products.contains(&product) {
                    products.push(product);
                }
                self.charge(id, until.max(self.grants[&id].at));
            }
            if dropped {
                for product in products {
                    self.stats.entry(product).or_default().sessions_dropped += 1;
                }
            }
            self.sessions[index].running = false;
        }
    }

    struct Rig {
        _dir: tempfile::TempDir,
        store: Store,
        inventory: Arc<Inventory>,
        config: EngineConfig,
        server_id: ServerId,
    }

    async fn rig(clock: Clock) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        let server_id = store.server_id().await.unwrap();
        let key = KeyPair::generate().unwrap();
        let mut trusted = TrustedKeys::default();
        trusted.add(key.public_key());
        let product = |product_id, runcount, credits, postpay| ProductRule {
            product_id,
            major_version: 0,
            product: format!("P{product_id}"),
            runcount,
            credits,
            postpay,
        };
        let license = License {
            key: "K".into(),
            server_id: server_id.to_string(),
            rules: Rules {
                serial_number: 1,
                issued: clock.now() - time::Duration::hours(1),
                expires: None,
                max_users: None,
                products: vec![
                    product(7, RUNCOUNT, PREPAID as u64, false),
                    product(9, 0, 0, true),
                ],
            },
        };
        let dir_licenses = LicenseDir::new(dir.path());
        dir_licenses
            .install_signed(&license, &key, &store)
            .await
            .unwrap();
        let inventory = Arc::new(
            Inventory::load(dir_licenses, trusted, server_id.clone(), store.clone())
                .await
                .unwrap(),
        );
        let config = EngineConfig {
            timeout: Duration::from_secs(TIMEOUT_S as u64),
            clock,
            ..EngineConfig::default()
        };
        Rig {
            _dir: dir,
            store,
            inventory,
            config,
            server_id,
        }
    }

    impl Rig {
        async fn engine(&self) -> Arc<Engine> {
            let (writer, _) = Writer::spawn(self.store.clone(), CancellationToken::new());
            Arc::new(
                Engine::load(
                    &self.store,
                    writer,
                    self.inventory.clone(),
                    self.config.clone(),
                    self.server_id.to_string(),
                )
                .await
                .unwrap(),
            )
        }
    }

    fn check(engine: &Engine, model: &Model) -> Result<(), TestCaseError> {
        for product in [7, 9] {
            let got = engine.stats(None, product, 0);
            let want = model.stats.get(&product).cloned().unwrap_or_default();
            prop_assert_eq!(&got, &want, "product {}", product);
        }
        prop_assert!(engine.stats(None, 7, 0).runcount_in_use <= RUNCOUNT);
        Ok(())
    }

    async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let clock = Clock::manual(start);
        let rig = rig(clock.clone()).await;
        let engine = rig.engine().await;
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Open => {
                    let opened = engine
                        .open_session(
                            OpenSession {
                                host: "h".into(),
                                message: String::new(),
                                pool: None,
                                user: None,
                            },
                            IpAddr::from([127, 0, 0, 1]),
                        )
                        .await
                        .unwrap();
                    model.sessions.push(MSession {
                        id: opened.session_id,
                        running: true,
                        last_hb: model.t,
                        ..MSession::default()
                    });
                }
                Op::Request {
                    session,
                    request,
                    product,
                } => {
                    let Some(index) = (session < model.sessions.len()).then_some(session) else {
                        continue;
                    };
                    let id = model.sessions[index].id;
                    let answer = engine
                        .request_license(
                            id,
                            RequestLicense {
                                request_id: format!("r{request}"),
                                product_id: product,
                                major_version: 0,
                                request_type: RequestType::All,
                                wait_s: Some(0),
                            },
                        )
                        .await;
                    let t = model.t;
                    let s = &mut model.sessions[index];
                    if !s.running {
                        prop_assert!(answer.is_err());
                        continue;
                    }
                    s.last_hb = t;
                    if let Some(license_id) = s.requests.get(&request) {
                        prop_assert_eq!(
                            answer.unwrap().license_id,
                            *license_id,
                            "a retry gets the same grant"
                        );
                        continue;
                    }
                    let stats = model.stats.entry(product).or_default();
                    let kind = if product == 7 && stats.runcount_in_use < RUNCOUNT {
                        Some(false)
                    } else if product == 9 || PREPAID - stats.used_credits > 0 {
                        Some(true)
                    } else {
                        None
                    };
                    match kind {
                        None => {
                            stats.failed += 1;
                            prop_assert!(
                                answer.is_err(),
                                "granted beyond the license: {:?}",
                                answer
                            );
                        }
                        Some(credits) => {
                            let granted =
                                answer.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                            let want = if credits {
                                LicenseType::Credits
                            } else {
                                LicenseType::Runcount
                            };
                            prop_assert_eq!(granted.license_type, want);
                            if credits {
                                stats.credit_grants += 1
                            } else {
                                stats.runcount_grants += 1;
                                stats.runcount_in_use += 1
                            }
                            let s = &mut model.sessions[index];
                            s.held.push(granted.license_id);
                            s.granted.push(granted.license_id);
                            s.requests.insert(request, granted.license_id);
                            model.grants.insert(
                                granted.license_id,
                                MGrant {
                                    product,
                                    credits,
                                    at: t,
                                    released: None,
                                },
                            );
                        }
                    }
                }
                Op::Release { session, nth } => {
                    let Some(s) = model.sessions.get(session) else {
                        continue;
                    };
                    let Some(&license_id) = s.granted.get(nth) else {
                        continue;
                    };
                    let (id, running) = (s.id, s.running);
                    let credits = engine.release(id, license_id).await.unwrap();
                    if running {
                        model.sessions[session].last_hb = model.t;
                    }
                    let t = model.t;
                    prop_assert_eq!(credits, model.charge(license_id, t));
                }
                Op::Heartbeat { session } => {
                    let Some(s) = model.sessions.get_mut(session) else {
                        continue;
                    };
                    let answer = engine.heartbeat(s.id);
                    prop_assert_eq!(answer.is_ok(), s.running);
                    if s.running {
                        s.last_hb = model.t;
                    }
                }
                Op::Close { session } => {
                    let Some(s) = model.sessions.get(session) else {
                        continue;
                    };
                    let closed = engine.close(s.id, None).await.unwrap();
                    if s.running {
                        prop_assert_eq!(closed.status, SessionStatus::Finished);
                        let t = model.t;
                        model.end(session, t, false);
                    }
                }
                Op::Advance { secs } => {
                    clock.advance(Duration::from_secs(secs));
                    model.t += i64::try_from(secs).unwrap();
                    for commit in engine.tick() {
                        commit.durable().await.unwrap();
                    }
                    for index in 0..model.sessions.len() {
                        let s = &model.sessions[index];
                        if s.running && model.t - s.last_hb > TIMEOUT_S {
                            let last = s.last_hb;
                            model.end(index, last, true);
                        }
                    }
                }
            }
            check(&engine, &model)?;
        }
        // What the ledger says is what was in memory.
        engine.writer.barrier().durable().await.unwrap();
        let replayed = rig.engine().await;
        check(&replayed, &model)?;
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn the_engine_agrees_with_the_model_and_with_its_own_ledger(ops in proptest::collection::vec(op(), 1..60)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(run(ops))?;
        }
    }
}
