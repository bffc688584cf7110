//! The one error type of the HTTP handlers, how each domain error becomes one, and how it becomes
//! a response.
//!
//! Every error answer has the body `{"error": {"code", "message"}}` (`models::ApiError`). Client
//! errors say precisely what was wrong. Server errors are logged with their full cause and
//! answered with a generic message: internals (paths, SQL) are not for whoever sent the request.
//!
//! The domain's errors ([`EngineError`], [`AuthError`], [`LicenseError`], ...) know nothing of
//! HTTP; this is the one place that gives each a status and a code. Each has its own explicit
//! `From`, so an error nobody mapped does not compile, rather than turning into a silent 500.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use models::{ApiError, ErrorCode};

use crate::{
    auth::AuthError,
    engine::EngineError,
    failover::membership::ChangeError,
    licensing::{
        file::LicenseError,
        install::{InstallError, RemoveError},
    },
    store::StoreError,
};

#[derive(Debug)]
pub enum AppError {
    /// An answer with a stable code: 404 UNKNOWN_SESSION, 409 NO_LICENSE_AVAILABLE, ...;
    /// `message` tells the caller what was wrong.
    Api {
        status: StatusCode,
        code: ErrorCode,
        message: String,
    },
    /// Too many failed logins; try again after `retry_after` seconds.
    TooManyRequests { retry_after: u64 },
    /// Something broke on our side. Logged, never shown.
    Internal(anyhow::Error),
}

impl AppError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Api {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl From<EngineError> for AppError {
    fn from(error: EngineError) -> Self {
        use EngineError as E;
        let (status, code) = match &error {
            E::InvalidHost => (StatusCode::BAD_REQUEST, ErrorCode::InvalidHost),
            E::InvalidUser => (StatusCode::BAD_REQUEST, ErrorCode::InvalidUser),
            E::InvalidMessage => (StatusCode::BAD_REQUEST, ErrorCode::InvalidMessage),
            E::InvalidPool(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidPoolId),
            E::InvalidRequestId => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequestId),
            E::UnknownSession(_) => (StatusCode::NOT_FOUND, ErrorCode::UnknownSession),
            E::SessionTokenMissing => (StatusCode::UNAUTHORIZED, ErrorCode::SessionTokenRequired),
            E::SessionTokenWrong => (StatusCode::FORBIDDEN, ErrorCode::SessionTokenWrong),
            E::NoRandomness => return Self::Internal(anyhow::Error::new(error)),
            E::SessionEnded(_) => (StatusCode::GONE, ErrorCode::SessionEnded),
            E::UnknownProduct { .. } => (StatusCode::NOT_FOUND, ErrorCode::UnknownProduct),
            E::NoVersion { .. } | E::AllInUse { .. } => {
                (StatusCode::CONFLICT, ErrorCode::NoLicenseAvailable)
            }
            E::UnknownLicense(_) | E::NotTheSessionsLicense { .. } => {
                (StatusCode::NOT_FOUND, ErrorCode::UnknownLicense)
            }
            E::LedgerUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::LedgerUnavailable,
            ),
            E::NoQuorum(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NoQuorum),
            E::NotOutside(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidJson),
        };
        Self::new(status, code, error.to_string())
    }
}

impl From<ChangeError> for AppError {
    fn from(error: ChangeError) -> Self {
        use ChangeError as E;
        let (status, code) = match &error {
            E::NotANetwork => (StatusCode::NOT_FOUND, ErrorCode::NotANetwork),
            E::List(_) | E::NoneStays => {
                (StatusCode::BAD_REQUEST, ErrorCode::NetworkMembersInvalid)
            }
            E::NotCoordinator => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NoQuorum),
            E::CatchUp { .. } | E::Failed(_) => {
                (StatusCode::CONFLICT, ErrorCode::NetworkChangeFailed)
            }
        };
        Self::new(status, code, error.to_string())
    }
}

impl From<AuthError> for AppError {
    fn from(error: AuthError) -> Self {
        use AuthError as E;
        let (status, code) = match &error {
            E::LoginDenied => (StatusCode::UNAUTHORIZED, ErrorCode::LoginDenied),
            E::TooManyAttempts { retry_after } => {
                return Self::TooManyRequests {
                    retry_after: *retry_after,
                };
            }
            E::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated),
            E::SessionExpired => (StatusCode::UNAUTHORIZED, ErrorCode::SessionExpired),
            E::Forbidden { .. } => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            E::UserLimit { .. } => (StatusCode::FORBIDDEN, ErrorCode::LicenseUserLimit),
            E::Store(_) | E::Internal(_) => return Self::Internal(error.into()),
        };
        Self::new(status, code, error.to_string())
    }
}

/// A license file that this server refuses: the request's fault, with the check that failed.
impl From<LicenseError> for AppError {
    fn from(error: LicenseError) -> Self {
        let status = match error {
            LicenseError::DuplicateSerial { .. } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, error.code(), error.to_string())
    }
}

impl From<InstallError> for AppError {
    fn from(error: InstallError) -> Self {
        match error {
            InstallError::License(error) => error.into(),
            InstallError::Io(error) => Self::Internal(error),
        }
    }
}

impl From<RemoveError> for AppError {
    fn from(error: RemoveError) -> Self {
        match error {
            RemoveError::NotInstalled(_) => Self::new(
                StatusCode::NOT_FOUND,
                ErrorCode::LicenseKeyNotFound,
                error.to_string(),
            ),
            RemoveError::Io(error) => Self::Internal(error),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.into())
    }
}

/// What the domain reports as `anyhow` is a failure of the machine (a file, the OS random
/// generator), never the request's fault.
impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> Self {
        Self::Internal(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::Api {
                status,
                code,
                message,
            } => (status, ApiError::new(code, message)),
            Self::TooManyRequests { retry_after } => {
                let body = ApiError::new(
                    ErrorCode::TooManyAttempts,
                    format!("too many failed logins; try again in {retry_after} s"),
                );
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after.to_string())],
                    Json(body),
                )
                    .into_response();
            }
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ApiError::new(
                        ErrorCode::Internal,
                        "internal server error; the server log has the details",
                    ),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
