//! How the engine is tuned, and where it reads the time.

use std::{sync::Arc, time::Duration};

use parking_lot::Mutex;
use time::OffsetDateTime;

/// Longest request id; ids are the client's, and memory is ours.
pub const MAX_REQUEST_ID: usize = 128;
/// Longest host name or message a session may carry.
pub const MAX_TEXT: usize = 1024;
/// Longest `user.realm` of a session: licensed users are kept until cleared, so they are short.
pub const MAX_REALM: usize = 64;
/// Longest `user.principal` of a session.
pub const MAX_PRINCIPAL: usize = 256;

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
            Self::Manual(at) => *at.lock(),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        if let Self::Manual(at) = self {
            *at.lock() += by;
        }
    }
}
