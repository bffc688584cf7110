//! Why a login or an admin request was refused, in the domain's words; `http::error` maps each to
//! a status and a code.

use thiserror::Error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum AuthError {
    /// An unknown principal or a wrong secret: the same answer for both.
    #[error("login denied: unknown principal or wrong secret")]
    LoginDenied,
    #[error("too many failed logins; try again in {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    #[error("no valid session token in X-Ak-Session-Id; log in with POST /server/auth")]
    Unauthenticated,
    #[error("the session token expired; log in again with POST /server/auth")]
    SessionExpired,
    /// `needs`: the permission it takes, as the login answer names permissions.
    #[error("{principal} may not do this: it needs {needs}")]
    Forbidden { principal: String, needs: String },
    #[error(
        "the license allows {limit} licensed users and all places are taken; an administrator can \
         clear users"
    )]
    UserLimit { limit: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The OS random generator or the password hasher failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}
