//! Keeping `client run`'s license while its command runs.
//!
//! The keeper sends the heartbeats. The license is lost when the session is gone: an
//! administrator released it, the server dropped it, or the server has not answered for the
//! session timeout (after which it drops the session itself). From then on the seat may be
//! someone else's, so the command runs unlicensed. The keeper first tries to get a license again
//! for the grace period: on the other servers first (the members of a failover network), then on
//! the same one, waiting in the queue like any request. If that fails, [`Keeper::run`] returns
//! why, and `client run` stops the command; under `--on-license-loss warn` it only warns and goes
//! on trying.
//!
//! The license held right now is published in a watch channel, so that whoever ends the command
//! releases the right one (a new session after a loss).

use std::time::Duration;

use models::{ErrorCode, OpenSession, RequestLicense, SessionOpened};
use tokio::{sync::watch, time::Instant};

use crate::{
    cli::LossPolicy,
    client::{ClientError, LicenseClient, new_request_id},
};

/// The least time one attempt to get a license back is given, even at the end of the grace
/// period (or with a grace of 0): a connection and an answer.
const ATTEMPT_FLOOR: Duration = Duration::from_secs(5);
/// The pause between two attempts that failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A license in hand: which server, which session, which grant.
#[derive(Debug, Clone)]
pub struct Held {
    pub client: LicenseClient,
    pub session: SessionOpened,
    pub license_id: u64,
}

/// What to ask for again after a loss: the same session and the same license.
#[derive(Debug, Clone)]
pub struct Job {
    pub open: OpenSession,
    pub request: RequestLicense,
}

pub struct Keeper {
    pub job: Job,
    /// `None`: the session timeout the server announced.
    pub grace: Option<Duration>,
    pub policy: LossPolicy,
    pub held: watch::Sender<Option<Held>>,
}

impl Keeper {
    /// Keeps the license; returns only when it is lost for good under [`LossPolicy::Stop`], with
    /// the reason.
    pub async fn run(self) -> String {
        loop {
            let Some(held) = self.held.borrow().clone() else {
                return "no license is held".to_owned();
            };
            let reason = heartbeat_until_lost(&held).await;
            self.held.send_replace(None);
            let grace = self
                .grace
                .unwrap_or(Duration::from_secs(held.session.timeout_s));
            eprintln!(
                "license-server client: the license is lost: {reason}; trying to get one again for {} s",
                grace.as_secs()
            );
            let mut client = held.client;
            let next = client.current() + 1;
            let again = match relicense(&mut client, &self.job, next, grace).await {
                Ok(again) => again,
                Err(last) if self.policy == LossPolicy::Stop => {
                    return format!(
                        "{reason}, and no license came back within {} s ({last})",
                        grace.as_secs()
                    );
                }
                Err(last) => {
                    eprintln!(
                        "license-server client: WARNING: the command runs on WITHOUT A LICENSE ({last}); still trying to get one"
                    );
                    loop {
                        tokio::time::sleep(RETRY_PAUSE).await;
                        if let Ok(again) = relicense(&mut client, &self.job, next, grace).await {
                            break again;
                        }
                    }
                }
            };
            eprintln!(
                "license-server client: licensed again by {} (session {}, license {})",
                again.client.server(),
                again.session.session_id,
                again.license_id
            );
            self.held.send_replace(Some(again));
        }
    }
}

/// Heartbeats until the session is known to be gone; returns why.
async fn heartbeat_until_lost(held: &Held) -> String {
    let every = Duration::from_secs(held.session.heartbeat_interval_s.max(1));
    let timeout = Duration::from_secs(held.session.timeout_s.max(1));
    let mut last_ok = Instant::now();
    let mut warned = false;
    loop {
        tokio::time::sleep(every).await;
        // A server that hangs must not hold the heartbeats up past the timeout.
        let failure = match tokio::time::timeout(every, held.client.heartbeat(&held.session)).await
        {
            Ok(Ok(())) => {
                last_ok = Instant::now();
                warned = false;
                continue;
            }
            Ok(Err(e)) if session_is_gone(&e) => return e.to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", every.as_secs()),
        };
        if last_ok.elapsed() >= timeout {
            return format!(
                "{} has not answered a heartbeat for {} s, so it has dropped the session ({failure})",
                held.client.server(),
                timeout.as_secs()
            );
        }
        if !warned {
            eprintln!("license-server client: heartbeat failed, retrying: {failure}");
            warned = true;
        }
    }
}

/// Answers that say the session is not ours any more, whatever happens next.
fn session_is_gone(error: &ClientError) -> bool {
    matches!(
        error.code(),
        Some(
            ErrorCode::SessionEnded
                | ErrorCode::UnknownSession
                | ErrorCode::SessionTokenWrong
                | ErrorCode::SessionTokenRequired
        )
    )
}

/// Tries to get the job's license again until `grace` has passed (at least once); the last
/// failure when it cannot.
async fn relicense(
    client: &mut LicenseClient,
    job: &Job,
    first: usize,
    grace: Duration,
) -> Result<Held, String> {
    let deadline = Instant::now() + grace;
    loop {
        let until = deadline.max(Instant::now() + ATTEMPT_FLOOR);
        let last = match tokio::time::timeout_at(until, attempt(client, job, first, deadline)).await
        {
            Ok(Ok(held)) => return Ok(held),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer in time".to_owned(),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(last);
        }
        tokio::time::sleep(RETRY_PAUSE.min(deadline - now)).await;
    }
}

/// One new session and one license request, which waits in the queue until `deadline`.
async fn attempt(
    client: &mut LicenseClient,
    job: &Job,
    first: usize,
    deadline: Instant,
) -> Result<Held, ClientError> {
    let session = client.open_session_from(&job.open, first).await?;
    let request = RequestLicense {
        request_id: new_request_id(),
        wait_s: Some(deadline.saturating_duration_since(Instant::now()).as_secs()),
        ..job.request.clone()
    };
    match client.request_license(&session, &request).await {
        Ok(granted) => Ok(Held {
            client: client.clone(),
            session,
            license_id: granted.license_id,
        }),
        Err(e) => {
            let _ = client.close(&session).await;
            Err(e)
        }
    }
}
