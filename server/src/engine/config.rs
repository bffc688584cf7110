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
    pub snapshots: SnapshotPolicy,
    pub clock: Clock,
}

/// When the engine writes a snapshot of its state (see `snapshot`): after `every_entries` new
/// ledger entries, or after `interval` when there is at least one, whichever comes first; and
/// when the server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub every_entries: u64,
    pub interval: Duration,
    /// Snapshots kept; the older ones are a fallback if the newest is damaged.
    pub keep: u32,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        // A start replays at most about a second's worth of entries at full load (≈ 100,000
        // entries per second on 2 cores), and a quiet server still snapshots every ten minutes.
        Self {
            every_entries: 100_000,
            interval: Duration::from_secs(600),
            keep: 3,
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
            snapshots: SnapshotPolicy::default(),
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
