//! Request extractors whose rejections use the API's error shape: a malformed body, path, query or
//! pool header gets `{"error": {"code", "message"}}` with a precise explanation (axum's own, for
//! what axum parses), like every other error.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
};
use models::{ErrorCode, headers};

use super::error::AppError;
use crate::licensing::pool::Pool;

/// A JSON request body.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct Json<T>(pub T);

/// On a request another member of a failover network passed on: the server id of that member,
/// which the client came to (and which holds a session it opens).
#[derive(Debug, Clone)]
pub struct CameTo(pub String);

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

/// A query string.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::InvalidJson,
        };
        Self::new(rejection.status(), code, rejection.body_text())
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(ErrorCode::InvalidPath, rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

/// The raw body of a request (a license file), with the API's error shape for a body that is too
/// large.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorCode::PayloadTooLarge
                } else {
                    ErrorCode::InvalidBody
                };
                AppError::new(rejection.status(), code, rejection.body_text())
            })
    }
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request has one (the license
/// protocol's session token). Never a rejection: whether a token is needed, and whether it is the
/// right one, is the domain's to say. A header of another scheme counts as none.
#[derive(Debug)]
pub struct Bearer(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            });
        Ok(Self(token))
    }
}

/// The pool of the `X-Pool-ID` header: without it (or with an empty one), the default pool.
impl<S: Send + Sync> FromRequestParts<S> for Pool {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let invalid = |why: String| {
            AppError::bad_request(
                ErrorCode::InvalidPoolId,
                format!("invalid X-Pool-ID header: {why}"),
            )
        };
        let mut values = parts.headers.get_all(headers::POOL).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(Self(None)),
            (Some(value), None) => Self::parse(value.as_bytes()).map_err(invalid),
            (Some(_), Some(_)) => Err(invalid("given more than once".to_owned())),
        }
    }
}
