//! Why the engine refused a request, in the domain's words. The HTTP rooms map each variant to a
//! status and an error code in one place (`http::error`); the engine knows nothing of HTTP.

use thiserror::Error;

use super::config::{MAX_PRINCIPAL, MAX_REALM, MAX_REQUEST_ID, MAX_TEXT};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    #[error(
        "host must be 1 to {MAX_TEXT} characters (not only spaces), without control characters"
    )]
    InvalidHost,
    #[error(
        "user: realm must be 1 to {MAX_REALM} characters and principal 1 to {MAX_PRINCIPAL} \
         characters, without control characters"
    )]
    InvalidUser,
    #[error("message must be at most {MAX_TEXT} characters, without control characters")]
    InvalidMessage,
    #[error("pool: {0}")]
    InvalidPool(String),
    #[error("request_id must be 1 to {MAX_REQUEST_ID} characters, without control characters")]
    InvalidRequestId,
    #[error("no session {0}")]
    UnknownSession(u64),
    /// A call on a session without the session's token.
    #[error(
        "this call needs the session's token, as `Authorization: Bearer TOKEN` with the \
         session_token that opening the session answered"
    )]
    SessionTokenMissing,
    /// A token that is not this session's.
    #[error("the token is not this session's")]
    SessionTokenWrong,
    /// The OS gave no random bytes for a session token.
    #[error("the server has no source of random numbers right now")]
    NoRandomness,
    #[error("{0}")]
    SessionEnded(Ended),
    #[error("no license for product {product_id} in {}", pool_label(.pool.as_deref()))]
    UnknownProduct {
        product_id: u32,
        pool: Option<String>,
    },
    /// The product has cartridges, but none covers this version.
    #[error(
        "no license of product {product_id} covers version {major_version} in {}",
        pool_label(.pool.as_deref())
    )]
    NoVersion {
        product_id: u32,
        major_version: u32,
        pool: Option<String>,
    },
    #[error(
        "every license for product {product_id} version {major_version} in {} is in use",
        pool_label(.pool.as_deref())
    )]
    AllInUse {
        product_id: u32,
        major_version: u32,
        pool: Option<String>,
    },
    #[error("no license {0}")]
    UnknownLicense(u64),
    #[error("license {license_id} does not belong to session {session_id}")]
    NotTheSessionsLicense { license_id: u64, session_id: u64 },
    /// A ledger write failed: from then on nothing is acknowledged (the log says why).
    #[error(
        "the server cannot record changes right now; the administrator has been told in the log"
    )]
    LedgerUnavailable,
    /// A member of a failover network that may not decide now: no coordinator, or no majority
    /// behind it. The reason says which.
    #[error("{0}")]
    NoQuorum(String),
    /// A member's outbox held an entry that only the engine decides.
    #[error("a {0} entry is the engine's to decide, not another table's change")]
    NotOutside(&'static str),
}

/// How a session ended, as a request that needed it running hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Ended {
    #[error(
        "session {0} is dropped (no heartbeat in time, or an administrator released it); open a \
         new session"
    )]
    Dropped(u64),
    #[error("session {0} is finished; open a new session")]
    Finished(u64),
    #[error(
        "the session ended while the request was waiting (or a retry of the same request_id took \
         its place)"
    )]
    WhileWaiting,
    #[error("the session ended")]
    Gone,
}

fn pool_label(pool: Option<&str>) -> String {
    match pool {
        Some(pool) => format!("pool {pool:?}"),
        None => "the default pool".to_owned(),
    }
}
