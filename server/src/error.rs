//! The one error type of the HTTP handlers, and how it becomes a response.
//!
//! Every error answer has the body `{"error": {"code", "message"}}` (`models::ApiError`). Client
//! errors say precisely what was wrong. Server errors are logged with their full cause and
//! answered with a generic message: internals (paths, SQL) are not for whoever sent the request.

use axum::{
    Json,
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
};
use models::ApiError;

#[derive(Debug)]
pub enum AppError {
    /// The request is wrong; `code` is stable, `message` tells the caller how.
    BadRequest {
        code: &'static str,
        message: String,
    },
    NotFound {
        message: String,
    },
    MethodNotAllowed,
    /// Any other answer with a stable code: 404 UNKNOWN_SESSION, 409 NO_LICENSE_AVAILABLE, ...
    Status {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Too many failed logins; try again after `retry_after` seconds.
    TooManyRequests {
        retry_after: u64,
    },
    /// Something broke on our side. Logged, never shown.
    Internal(anyhow::Error),
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }
}

impl AppError {
    pub fn status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Status {
            status,
            code,
            message: message.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(error: E) -> Self {
        Self::Internal(error.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, ApiError::new(code, message))
            }
            Self::NotFound { message } => {
                (StatusCode::NOT_FOUND, ApiError::new("NOT_FOUND", message))
            }
            Self::Status {
                status,
                code,
                message,
            } => (status, ApiError::new(code, message)),
            Self::TooManyRequests { retry_after } => {
                let body = ApiError::new(
                    "TOO_MANY_ATTEMPTS",
                    format!("too many failed logins; try again in {retry_after} s"),
                );
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(axum::http::header::RETRY_AFTER, retry_after.to_string())],
                    Json(body),
                )
                    .into_response();
            }
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ApiError::new(
                    "METHOD_NOT_ALLOWED",
                    "this method is not allowed on this path",
                ),
            ),
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ApiError::new(
                        "INTERNAL",
                        "internal server error; the server log has the details",
                    ),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// Fallback of both routers: unknown paths get the JSON error shape too.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound {
        message: format!("no such path: {}", uri.path()),
    }
}

pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
