//! License requests: granted at once, refused, or parked as waiters; and releases.
//!
//! A live request decides under the engine's lock, applies the event in memory and queues it to
//! the ledger writer *under the same lock*, so the ledger's order is the order of the decisions;
//! then, outside the lock, it waits until the event is durable before answering. Seats are counted
//! in memory under the lock, so two requests can never take the same seat, and the lock is never
//! held across an `.await`.
//!
//! **Waiting costs nothing.** A request that finds no free license parks a oneshot sender in a
//! FIFO queue and sleeps on the receiver. Whatever frees capacity (a release, a session ending, a
//! new license, the periodic tick) serves the queue in order, under the lock, before any newcomer
//! can look: first come, first served.

use std::{sync::Arc, time::Duration};

use models::{Granted, LicenseType, RefusalReason, RequestLicense, SessionStatus};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::{
    config::MAX_REQUEST_ID,
    error::{Ended, EngineError},
    machine::{Engine, from_ledger, settle},
    search::{Search, search},
    sessions::is_plain_text,
    state::{CartridgeKey, Delivery, State, Waiter},
};
use crate::{
    ledger::{Commit, Event},
    licensing::inventory::Snapshot,
};

/// What a license request does next.
enum Step {
    Deliver(Granted, Commit),
    Wait(u64, oneshot::Receiver<Delivery>),
    Refuse(EngineError, Commit),
}

impl Engine {
    /// A license for the session, with the session's `token`.
    pub async fn request_license(
        self: &Arc<Self>,
        session_id: u64,
        token: Option<&str>,
        request: RequestLicense,
    ) -> Result<Granted, EngineError> {
        self.check_writable()?;
        if request.request_id.is_empty() || !is_plain_text(&request.request_id, MAX_REQUEST_ID) {
            return Err(EngineError::InvalidRequestId);
        }
        let wait = request
            .wait_s
            .map_or(self.config.default_wait, Duration::from_secs)
            .min(self.config.max_wait);
        let step = {
            let mut state = self.lock();
            state.authorize(session_id, token)?;
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
                        // The queue went with a coordinator that stopped deciding: the client
                        // asks again, elsewhere.
                        self.check_writable()?;
                        return Err(EngineError::SessionEnded(Ended::WhileWaiting));
                    }
                    Err(_elapsed) => {
                        let refused = {
                            let mut state = self.lock();
                            let position = state.waiters.iter().position(|w| w.id == waiter_id);
                            match position.and_then(|i| state.waiters.remove(i)) {
                                Some(waiter) => {
                                    Some(self.refuse(&mut state, &waiter.request, session_id, true))
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
                                Err(_) => return Err(EngineError::SessionEnded(Ended::Gone)),
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
    ) -> Result<Step, EngineError> {
        let now = self.now();
        let session = state.running_mut(session_id)?;
        session.last_heartbeat = now;
        if let Some(license_id) = session.requests.get(&request.request_id).copied() {
            let granted = state
                .grants
                .get(&license_id)
                .map(|g| g.answer(license_id))
                .ok_or(EngineError::SessionEnded(Ended::Gone))?;
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
                let (error, commit) = self.refuse(state, &request, session_id, false);
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

    /// Records a refusal (a `failed` for the cartridge asked for first) and says why; `waited`
    /// when the request waited for a seat first.
    fn refuse(
        &self,
        state: &mut State,
        request: &RequestLicense,
        session_id: u64,
        waited: bool,
    ) -> (EngineError, Commit) {
        let now = self.now();
        let snapshot = self.inventory.snapshot();
        let pool = state.sessions.get(&session_id).and_then(|s| s.pool.clone());
        let (product_id, major_version) = (request.product_id, request.major_version);
        let asked = (pool.clone(), product_id, major_version);
        let (error, key, reason) = match search(state, &snapshot, pool.as_deref(), request, now) {
            Search::UnknownProduct => {
                let reason = if snapshot.pools_with(product_id, now).is_empty() {
                    RefusalReason::UnknownProduct
                } else {
                    RefusalReason::WrongPool
                };
                (
                    EngineError::UnknownProduct { product_id, pool },
                    asked,
                    reason,
                )
            }
            Search::NoVersion => (
                EngineError::NoVersion {
                    product_id,
                    major_version,
                    pool,
                },
                asked,
                RefusalReason::NoVersion,
            ),
            // Found: a seat came free between the wait's timeout and this lock; the waiter was
            // refused for having waited out, all the same.
            Search::Busy { first, seats } => (
                EngineError::AllInUse {
                    product_id,
                    major_version,
                    pool,
                },
                first,
                match (waited, seats) {
                    (true, _) => RefusalReason::WaitedOut,
                    (false, true) => RefusalReason::NoSeatFree,
                    (false, false) => RefusalReason::CreditsExhausted,
                },
            ),
            Search::Found { key, .. } => (
                EngineError::AllInUse {
                    product_id,
                    major_version,
                    pool,
                },
                key,
                if waited {
                    RefusalReason::WaitedOut
                } else {
                    RefusalReason::NoSeatFree
                },
            ),
        };
        let event = Event::LicenseRefused {
            session_id,
            product_id: key.1,
            major_version: key.2,
            pool: key.0,
            reason: Some(reason),
        };
        (error, self.record(state, now, event))
    }

    /// Grants to waiters, oldest first, whatever is free now.
    pub(super) fn serve_waiters(
        &self,
        state: &mut State,
        snapshot: &Snapshot,
        now: OffsetDateTime,
    ) {
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

    /// Releases a license of the session, with the session's `token`.
    pub async fn release(
        &self,
        session_id: u64,
        token: Option<&str>,
        license_id: u64,
    ) -> Result<u64, EngineError> {
        self.check_writable()?;
        let (credits, commit) = {
            let mut state = self.lock();
            state.authorize(session_id, token)?;
            let now = self.now();
            let Some(grant) = state.grants.get(&license_id).cloned() else {
                return Err(EngineError::UnknownLicense(license_id));
            };
            if grant.session_id != session_id {
                return Err(EngineError::NotTheSessionsLicense {
                    license_id,
                    session_id,
                });
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
