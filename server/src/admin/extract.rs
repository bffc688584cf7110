//! Who is asking: the administrator whose session token (`X-Ak-Session-Id`) a request carries,
//! with the permission the endpoint needs. The token is judged by `auth::Auth`; this only reads
//! the header.

use axum::{extract::FromRequestParts, http::HeaderMap, http::request::Parts};
use models::headers;

use crate::{
    app::AppState,
    auth::{AdminSession, Permission},
    http::AppError,
};

/// An administrator with `VIEW_LICENSE` (who it is does not matter to what they may see).
#[derive(Debug)]
pub struct Viewer;

/// An administrator with `EDIT_LICENSE`.
#[derive(Debug)]
pub struct Editor(pub AdminSession);

/// The session token of a request, if it has one.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(headers::SESSION_TOKEN)
        .and_then(|v| v.to_str().ok())
}

async fn session_with(
    parts: &Parts,
    state: &AppState,
    permission: Permission,
) -> Result<AdminSession, AppError> {
    let session = state
        .auth
        .authenticate(session_token(&parts.headers))
        .await?;
    session.require(permission)?;
    Ok(session)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        session_with(parts, state, Permission::View)
            .await
            .map(|_| Self)
    }
}

impl FromRequestParts<AppState> for Editor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        session_with(parts, state, Permission::Edit).await.map(Self)
    }
}

/// The session token every admin endpoint takes, as the OpenAPI documents list it.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("X-Ak-Session-Id"), parameter_in = Header)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
pub struct SessionToken(String);

/// What every admin endpoint answers without a valid session token (401: UNAUTHENTICATED,
/// SESSION_EXPIRED) or without the permission it needs (403: FORBIDDEN), as the OpenAPI
/// documents list it.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
pub enum Refused {
    #[response(status = 401)]
    Unauthenticated(models::ApiError),
    #[response(status = 403)]
    Forbidden(models::ApiError),
}

/// The vendor's licensing token of the `remote/...` endpoints, as the OpenAPI documents list it.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("X-Lic-Session-Id"), parameter_in = Header)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
pub struct LicensingToken(String);
