//! The login rate limit and the secret check, shared by the admin API and the vendor service.
//!
//! Failed logins are counted per principal and per client address; after [`MAX_FAILURES`] in
//! [`FAILURE_WINDOW`], further attempts are refused with a time to wait until the oldest failure
//! ages out (even with the right password: that is the point). A login for an unknown principal
//! still runs a full argon2 verification (against a dummy hash), so the answer time does not tell
//! whether the principal exists.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use parking_lot::Mutex;

use super::{
    error::AuthError,
    passwords::{DUMMY_HASH, verify_password},
};

pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Sliding-window counts of failed logins.
#[derive(Debug, Default)]
struct Failures {
    by_key: HashMap<String, VecDeque<Instant>>,
}

impl Failures {
    /// How long until `key` may try again, if it is locked out now.
    fn locked(&mut self, key: &str, now: Instant) -> Option<Duration> {
        let times = self.by_key.get_mut(key)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= MAX_FAILURES {
            times
                .front()
                .map(|oldest| FAILURE_WINDOW.saturating_sub(now.duration_since(*oldest)))
        } else {
            None
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
#[derive(Debug, Default)]
pub struct LoginGate {
    failures: Mutex<Failures>,
}

impl LoginGate {
    /// Checks `secret` against `hash` for an attempt known by `keys` (the principal, the client
    /// address). `hash` is `None` for an unknown principal: a dummy hash is verified instead, so
    /// that takes as long. `Err(429)` while any key is locked out (even with the right secret);
    /// `Ok(false)` after recording a failure against every key.
    pub async fn check(
        &self,
        keys: &[String],
        hash: Option<String>,
        secret: &serde_json::Value,
    ) -> Result<bool, AuthError> {
        let now = Instant::now();
        let wait = {
            let mut failures = self.failures.lock();
            keys.iter().filter_map(|k| failures.locked(k, now)).max()
        };
        if let Some(wait) = wait {
            return Err(AuthError::TooManyAttempts {
                retry_after: wait.as_secs().max(1),
            });
        }
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let text = secret.as_str().unwrap_or_default().to_owned();
        let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &text))
            .await
            .unwrap_or(false);
        let ok = known && matches && secret.is_string();
        if !ok {
            let mut failures = self.failures.lock();
            for key in keys {
                failures.record(key, now);
            }
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_a_minute_lock_out_until_the_oldest_ages() {
        let mut failures = Failures::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(failures.locked("k", t0 + Duration::from_secs(i)), None);
            failures.record("k", t0 + Duration::from_secs(i));
        }
        let wait = failures.locked("k", t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(failures.locked("other", t0), None);
        assert_eq!(failures.locked("k", t0 + Duration::from_secs(60)), None);
    }
}
