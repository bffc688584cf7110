//! The login rate limit and the secret check, shared by the admin API and the vendor service.
//!
//! Failed logins are counted per client address and per principal; after [`MAX_FAILURES`] from
//! one address, or [`MAX_FAILURES_PER_PRINCIPAL`] for one principal from all addresses, in
//! [`FAILURE_WINDOW`], further attempts are refused with a time to wait until the oldest failure
//! ages out (even with the right password: that is the point). The principal's own limit is ten
//! times higher, so that one stranger guessing `admin`'s password locks out only their own
//! address, never the administrator; guessing from many addresses at once still meets a limit. A login for an unknown principal
//! still runs a full argon2 verification (against a dummy hash), so the answer time does not tell
//! whether the principal exists.
//!
//! An attempt is counted *before* its hash is checked, and taken back if it succeeds: so a flood
//! of concurrent attempts is refused after the first [`MAX_FAILURES`], instead of all being
//! checked at once. And at most [`MAX_CONCURRENT_CHECKS`] argon2 checks run at a time (each takes
//! ~20 MB for a moment); an attempt beyond that is answered 429 at once, without a hash, so no
//! number of logins can exhaust memory.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::{
    error::AuthError,
    passwords::{DUMMY_HASH, verify_password},
};

/// Failed logins from one client address in [`FAILURE_WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// Failed logins for one principal, from all addresses, in [`FAILURE_WINDOW`].
pub const MAX_FAILURES_PER_PRINCIPAL: usize = 50;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Password checks at once, per gate: argon2id takes ~20 MB each while it runs.
pub const MAX_CONCURRENT_CHECKS: usize = 4;

/// Sliding-window counts of failed logins.
#[derive(Debug, Default)]
struct Failures {
    by_key: HashMap<String, VecDeque<Instant>>,
}

impl Failures {
    /// How long until `key` may try again, if it is locked out now (it failed `limit` times).
    fn locked(&mut self, key: &str, limit: usize, now: Instant) -> Option<Duration> {
        let times = self.by_key.get_mut(key)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= limit {
            times
                .front()
                .map(|oldest| FAILURE_WINDOW.saturating_sub(now.duration_since(*oldest)))
        } else {
            None
        }
    }

    /// Takes back an attempt recorded at `at` (it succeeded, or it was never checked).
    fn forget(&mut self, key: &str, at: Instant) {
        if let Some(times) = self.by_key.get_mut(key)
            && let Some(i) = times.iter().rposition(|t| *t == at)
        {
            times.remove(i);
        }
    }

    fn record(&mut self, key: &str, now: Instant) {
        self.by_key
            .entry(key.to_owned())
            .or_default()
            .push_back(now);
        // Forget keys that went quiet, so a flood of made-up names cannot grow this forever.
        if self.by_key.len() > 100_000 {
            self.by_key.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
            });
        }
    }
}

/// The login rate limit and the secret check, shared by the admin API and the vendor service.
#[derive(Debug)]
pub struct LoginGate {
    failures: Mutex<Failures>,
    checks: Semaphore,
}

impl Default for LoginGate {
    fn default() -> Self {
        Self {
            failures: Mutex::default(),
            checks: Semaphore::new(MAX_CONCURRENT_CHECKS),
        }
    }
}

/// What a login attempt is counted against: `principal` (as the caller names it, with its realm)
/// and the client's address, each with its limit.
pub fn attempt_keys(principal: &str, peer: std::net::IpAddr) -> [(String, usize); 2] {
    [
        (format!("principal:{principal}"), MAX_FAILURES_PER_PRINCIPAL),
        (format!("peer:{}", peer.to_canonical()), MAX_FAILURES),
    ]
}

impl LoginGate {
    /// Checks `secret` against `hash` for an attempt known by `keys` (see [`attempt_keys`]). `hash` is `None` for an unknown principal: a dummy hash is verified instead, so
    /// that takes as long. `Err(429)` while any key is locked out (even with the right secret);
    /// `Ok(false)` after recording a failure against every key.
    pub async fn check(
        &self,
        keys: &[(String, usize)],
        hash: Option<String>,
        secret: &serde_json::Value,
    ) -> Result<bool, AuthError> {
        let now = Instant::now();
        {
            // Checked and counted under one lock: concurrent attempts cannot all pass.
            let mut failures = self.failures.lock();
            if let Some(wait) = keys
                .iter()
                .filter_map(|(key, limit)| failures.locked(key, *limit, now))
                .max()
            {
                return Err(AuthError::TooManyAttempts {
                    retry_after: wait.as_secs().max(1),
                });
            }
            for (key, _) in keys {
                failures.record(key, now);
            }
        }
        let forget = || {
            let mut failures = self.failures.lock();
            for (key, _) in keys {
                failures.forget(key, now);
            }
        };
        let Ok(_permit) = self.checks.try_acquire() else {
            forget();
            return Err(AuthError::TooManyAttempts { retry_after: 1 });
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let text = secret.as_str().unwrap_or_default().to_owned();
        let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &text))
            .await
            .unwrap_or(false);
        let ok = known && matches && secret.is_string();
        if ok {
            forget();
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_attempt_counts_before_its_check_and_none_is_checked_beyond_the_permits() {
        let gate = LoginGate::default();
        let keys = attempt_keys("admin", [10, 0, 0, 1].into());
        let secret = serde_json::json!("wrong");
        // All permits busy: answered at once, and not counted.
        let held: Vec<_> = (0..MAX_CONCURRENT_CHECKS)
            .map(|_| gate.checks.try_acquire().unwrap())
            .collect();
        let busy = gate.check(&keys, None, &secret).await;
        assert!(matches!(
            busy,
            Err(AuthError::TooManyAttempts { retry_after: 1 })
        ));
        drop(held);
        for _ in 0..MAX_FAILURES {
            assert!(!gate.check(&keys, None, &secret).await.unwrap());
        }
        assert!(matches!(
            gate.check(&keys, None, &secret).await,
            Err(AuthError::TooManyAttempts { .. })
        ));
        // A success takes its own attempt back.
        let other = attempt_keys("ok", [10, 0, 0, 2].into());
        let hash = super::super::passwords::hash_password("right").unwrap();
        for _ in 0..(MAX_FAILURES + 2) {
            assert!(
                gate.check(&other, Some(hash.clone()), &serde_json::json!("right"))
                    .await
                    .unwrap()
            );
        }
    }

    #[tokio::test]
    async fn a_stranger_locks_out_their_own_address_not_the_principal() {
        let gate = LoginGate::default();
        let hash = super::super::passwords::hash_password("right").unwrap();
        let wrong = serde_json::json!("wrong");
        for _ in 0..MAX_FAILURES {
            let stranger = attempt_keys("admin", [10, 0, 0, 66].into());
            assert!(
                !gate
                    .check(&stranger, Some(hash.clone()), &wrong)
                    .await
                    .unwrap()
            );
        }
        let stranger = attempt_keys("admin", [10, 0, 0, 66].into());
        assert!(
            gate.check(&stranger, Some(hash.clone()), &wrong)
                .await
                .is_err()
        );
        let admin = attempt_keys("admin", [10, 0, 0, 1].into());
        let right = serde_json::json!("right");
        assert!(
            gate.check(&admin, Some(hash.clone()), &right)
                .await
                .unwrap()
        );
        // Guesses from many addresses meet the principal's own limit.
        for i in 0..(MAX_FAILURES_PER_PRINCIPAL / MAX_FAILURES - 1) {
            for _ in 0..MAX_FAILURES {
                let many = attempt_keys("admin", [10, 1, 0, u8::try_from(i).unwrap()].into());
                assert!(!gate.check(&many, Some(hash.clone()), &wrong).await.unwrap());
            }
        }
        assert!(gate.check(&admin, Some(hash), &right).await.is_err());
    }

    #[test]
    fn five_failures_in_a_minute_lock_out_until_the_oldest_ages() {
        let mut failures = Failures::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(failures.locked("k", 5, t0 + Duration::from_secs(i)), None);
            failures.record("k", t0 + Duration::from_secs(i));
        }
        let wait = failures
            .locked("k", 5, t0 + Duration::from_secs(10))
            .unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(failures.locked("k", 6, t0 + Duration::from_secs(10)), None);
        assert_eq!(failures.locked("other", 5, t0), None);
        assert_eq!(failures.locked("k", 5, t0 + Duration::from_secs(60)), None);
    }
}
