//! A session's life: opened, kept alive by heartbeats, closed by its client or an administrator,
//! or dropped by the periodic tick when its heartbeats stopped. Ending a session releases what it
//! holds in the same ledger entry, and whatever that frees goes to the waiters first.
//!
//! **Heartbeats are not in the ledger** (they would be most of it). After a restart, running
//! sessions count as having sent a heartbeat at the start (see `Engine::load`), so clients that
//! keep going are not dropped by the restart.

use std::{net::IpAddr, sync::Arc, time::Duration};

use models::{OpenSession, RefusalReason, SessionClosed, SessionOpened, SessionStatus, User};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::{
    config::{MAX_PRINCIPAL, MAX_REALM, MAX_TEXT},
    error::EngineError,
    history,
    machine::{Engine, from_ledger, settle},
    secrets,
    state::{Role, State},
};
use crate::{
    ledger::{Commit, Event, Refusal, ReleasedLicense},
    licensing::pool,
};

/// Sessions dropped under one hold of the engine's lock; grants wait for at most one chunk.
pub const DROP_CHUNK: usize = 256;

/// Up to this many drops at once, each is logged; beyond, one line per chunk (a mass drop would
/// otherwise write thousands of lines, under the lock).
const LOG_EACH_DROP: usize = 16;

/// `ids` in chunks of [`DROP_CHUNK`]; one empty chunk when there are none, so a tick still serves
/// the waiters.
fn drop_chunks(ids: &[u64]) -> impl Iterator<Item = &[u64]> {
    ids.chunks(DROP_CHUNK)
        .chain(ids.is_empty().then_some(&[][..]))
}

/// Who ends a session: its client, which must show the session's token, or an administrator.
enum Closer<'a> {
    Client(Option<&'a str>),
    Administrator(String),
}

/// At most `max` characters, none of them a control character (a line break or an escape in a
/// host name or a user name is never meant, and breaks logs and exports). Characters, not bytes,
/// as JSON Schema's `maxLength` counts them; so at most `4 * max` bytes.
pub(super) fn is_plain_text(text: &str, max: usize) -> bool {
    text.chars().count() <= max && !text.chars().any(char::is_control)
}

/// A session's `user`, checked before it is counted as a licensed user (they are kept until an
/// administrator clears them, so nothing unbounded gets in).
pub fn check_user(user: &User) -> Result<(), EngineError> {
    let given = |text: &str, max| !text.is_empty() && is_plain_text(text, max);
    if given(&user.realm, MAX_REALM) && given(&user.principal, MAX_PRINCIPAL) {
        Ok(())
    } else {
        Err(EngineError::InvalidUser)
    }
}

/// The host (trimmed) and pool of a request to open a session, checked: what its ledger entry
/// records.
fn checked(request: &OpenSession) -> Result<(String, Option<String>), EngineError> {
    // Checked as sent, then trimmed: spaces around a host name are not part of it.
    let host = request.host.trim();
    if !is_plain_text(&request.host, MAX_TEXT) || host.is_empty() {
        return Err(EngineError::InvalidHost);
    }
    if let Some(user) = &request.user {
        check_user(user)?;
    }
    if !is_plain_text(&request.message, MAX_TEXT) {
        return Err(EngineError::InvalidMessage);
    }
    let pool = match &request.pool {
        Some(name) => pool::check_name(name)
            .map_err(EngineError::InvalidPool)?
            .map(str::to_owned),
        None => None,
    };
    Ok((host.to_owned(), pool))
}

impl Engine {
    /// `on`: in a failover network, the server id of the member the client came to (which holds
    /// the session).
    pub async fn open_session(
        &self,
        request: OpenSession,
        ip_address: IpAddr,
        on: Option<String>,
    ) -> Result<SessionOpened, EngineError> {
        self.check_writable()?;
        let (host, pool) = checked(&request)?;
        let (session_token, token_hash) = secrets::new_token()?;
        let (session_id, commit) = {
            let mut state = self.lock();
            let session_id = state.next_session.max(1);
            let event = Event::SessionOpened {
                session_id,
                host,
                ip_address,
                message: request.message,
                pool,
                user: request.user,
                token_sha256: Some(secrets::to_hex(&token_hash)),
                server_id: on.clone(),
            };
            (session_id, self.record(&mut state, self.now(), event))
        };
        commit.durable().await.map_err(from_ledger)?;
        Ok(SessionOpened {
            session_id,
            session_token,
            server_id: on.unwrap_or_else(|| self.server_id.clone()),
            heartbeat_interval_s: self.config.heartbeat_interval.as_secs(),
            timeout_s: self.config.timeout.as_secs(),
        })
    }

    /// Records that the session `request` asked for was not opened, and why (a user beyond the
    /// license's limit): the refusal is in the ledger, its export and the vendor's usage, like
    /// a refused license. Durable before it returns.
    pub async fn refuse_session(
        &self,
        request: OpenSession,
        ip_address: IpAddr,
        reason: RefusalReason,
    ) -> Result<(), EngineError> {
        self.check_writable()?;
        let (host, pool) = checked(&request)?;
        let event = Event::SessionRefused {
            host,
            ip_address,
            pool,
            user: request.user,
            reason,
        };
        let commit = {
            let mut state = self.lock();
            self.record(&mut state, self.now(), event)
        };
        commit.durable().await.map_err(from_ledger)?;
        Ok(())
    }

    /// A heartbeat, with the session's `token`.
    ///
    /// On a member that follows a coordinator, the session is checked against this member's copy
    /// of the state and noted for the coordinator (see `replica`); without a coordinator it is
    /// refused, so the client turns to another member.
    pub fn heartbeat(&self, session_id: u64, token: Option<&str>) -> Result<(), EngineError> {
        let mut state = self.lock();
        let following = state.role == Role::Following;
        match state.authorize(session_id, token) {
            // A member that follows may not have caught up with a session opened a moment ago
            // (or while it was down): only the coordinator may say a session does not exist.
            Err(EngineError::UnknownSession(id)) if following => {
                return Err(EngineError::NoQuorum(format!(
                    "this member does not know session {id} (yet); ask another member"
                )));
            }
            other => other?,
        }
        if following && let Some(Refusal::NoQuorum(reason)) = self.writer.refusal() {
            return Err(EngineError::NoQuorum(reason));
        }
        let session = state.running_mut(session_id)?;
        session.last_heartbeat = self.now();
        drop(state);
        if following {
            self.heard.lock().insert(session_id);
        }
        Ok(())
    }

    /// The client ends its session (with the session's `token`) and releases what it holds.
    pub async fn close(
        &self,
        session_id: u64,
        token: Option<&str>,
    ) -> Result<SessionClosed, EngineError> {
        self.end_session(session_id, Closer::Client(token)).await
    }

    /// An administrator (`by`) ends a session, which needs no session token.
    pub async fn force_close(
        &self,
        session_id: u64,
        by: String,
    ) -> Result<SessionClosed, EngineError> {
        self.end_session(session_id, Closer::Administrator(by))
            .await
    }

    async fn end_session(
        &self,
        session_id: u64,
        closer: Closer<'_>,
    ) -> Result<SessionClosed, EngineError> {
        self.check_writable()?;
        let (closed, commit) = {
            let mut state = self.lock();
            // An administrator's release is not the job finishing: the page says `dropped`, so
            // it never shows "finished" for a job that may still be running.
            let (by, ended) = match closer {
                Closer::Client(token) => {
                    state.authorize(session_id, token)?;
                    (None, SessionStatus::Finished)
                }
                Closer::Administrator(by) => (Some(by), SessionStatus::Dropped),
            };
            let Some(session) = state.sessions.get(&session_id) else {
                return Err(EngineError::UnknownSession(session_id));
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
                let (answer, commit) = self.end(&mut state, session_id, ended, now, now, by);
                (answer, commit)
            }
        };
        settle(commit, closed.credits_used).await?;
        Ok(closed)
    }

    /// Ends a running session: releases its licenses (credits up to `charge_until`), and serves
    /// the waiters with what that freed.
    pub(super) fn end(
        &self,
        state: &mut State,
        session_id: u64,
        status: SessionStatus,
        charge_until: OffsetDateTime,
        now: OffsetDateTime,
        by: Option<String>,
    ) -> (SessionClosed, Commit) {
        let ended = self.end_only(state, session_id, status, charge_until, now, by);
        let snapshot = self.inventory.snapshot();
        self.serve_waiters(state, &snapshot, now);
        ended
    }

    /// [`Engine::end`] without serving the waiters: for a batch of drops, which serves them once.
    fn end_only(
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
        (
            SessionClosed {
                session_id,
                status,
                credits_used,
            },
            commit,
        )
    }

    /// The running sessions whose heartbeats stopped, found in one pass under the lock.
    fn silent_sessions(&self) -> Vec<u64> {
        let (now, timeout) = (self.now(), self.timeout());
        let state = self.lock();
        state
            .sessions
            .iter()
            .filter(|(_, s)| s.status == SessionStatus::Running && now - s.last_heartbeat > timeout)
            .map(|(id, _)| *id)
            .collect()
    }

    fn timeout(&self) -> time::Duration {
        time::Duration::try_from(self.config.timeout).unwrap_or(time::Duration::MAX)
    }

    /// Drops the sessions of `ids` that are still silent (a heartbeat may have come since they
    /// were found), under one hold of the lock; then serves the waiters, once, with what that
    /// freed and whatever else changed (licenses installed or expired, pools reassigned).
    fn drop_silent(&self, ids: &[u64]) -> Vec<Commit> {
        if self.writer.has_failed() {
            return Vec::new();
        }
        let (now, timeout) = (self.now(), self.timeout());
        let mut state = self.lock();
        let mut commits = Vec::with_capacity(ids.len());
        for &session_id in ids {
            let Some(last_heartbeat) = state
                .sessions
                .get(&session_id)
                .filter(|s| s.status == SessionStatus::Running && now - s.last_heartbeat > timeout)
                .map(|s| s.last_heartbeat)
            else {
                continue;
            };
            if ids.len() <= LOG_EACH_DROP {
                tracing::info!(
                    session_id,
                    "session dropped: no heartbeat for {} s",
                    self.config.timeout.as_secs()
                );
            }
            let (_, commit) = self.end_only(
                &mut state,
                session_id,
                SessionStatus::Dropped,
                last_heartbeat,
                now,
                Some("heartbeat timeout".to_owned()),
            );
            commits.push(commit);
        }
        if ids.len() > LOG_EACH_DROP {
            tracing::info!(
                dropped = commits.len(),
                first_session_id = ids.first().copied().unwrap_or_default(),
                last_session_id = ids.last().copied().unwrap_or_default(),
                "{} sessions dropped at once: no heartbeat for {} s (the ledger names each)",
                commits.len(),
                self.config.timeout.as_secs()
            );
        }
        let snapshot = self.inventory.snapshot();
        self.serve_waiters(&mut state, &snapshot, now);
        commits
    }

    /// Drops the sessions whose heartbeats stopped and serves the waiters, at once: the commits
    /// to wait for. [`Engine::run_ticks`] does the same in paced chunks.
    pub fn tick(&self) -> Vec<Commit> {
        let silent = self.silent_sessions();
        drop_chunks(&silent)
            .flat_map(|chunk| self.drop_silent(chunk))
            .collect()
    }

    /// One tick as the server runs it: [`DROP_CHUNK`] sessions per hold of the lock, and each
    /// chunk durable before the next is taken, so a mass drop (a rack powered off, a restart
    /// after an outage) neither holds the lock for long nor queues a backlog of rows in front of
    /// the grants that arrive meanwhile.
    async fn tick_paced(&self) {
        let silent = self.silent_sessions();
        for chunk in drop_chunks(&silent) {
            for commit in self.drop_silent(chunk) {
                if let Err(e) = commit.durable().await {
                    tracing::error!(error = %e, "cannot record a dropped session");
                }
            }
        }
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
                _ = interval.tick() => self.tick_paced().await,
            }
        }
    }
}
