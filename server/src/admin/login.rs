//! `POST /server/auth` and `DELETE /server/auth`: an administrator's session.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::HeaderMap,
};
use models::{ApiError, LoginAnswer, LoginRequest};

use super::extract::{SessionToken, session_token};
use crate::{
    app::AppState,
    http::{AppError, documented::JsonRefused, extract::Json},
};

/// Log in as an administrator.
#[utoipa::path(
    post, path = "/server/auth", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in: the token goes into X-Ak-Session-Id", body = LoginAnswer),
        (status = 400, description = "INVALID_JSON: not JSON", body = ApiError),
        (status = 401, description = "LOGIN_DENIED: unknown principal or wrong secret (the same answer for both)", body = ApiError),
        (status = 429, description = "TOO_MANY_ATTEMPTS, with Retry-After", body = ApiError),
        JsonRefused,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<LoginRequest>,
) -> Result<axum::Json<LoginAnswer>, AppError> {
    // Administrators are not licensed users of the product: a full user limit never locks them
    // out.
    let answer = state.auth.login(request, peer.ip().to_canonical()).await?;
    Ok(axum::Json(answer))
}

/// Log out: the token stops working.
#[utoipa::path(
    delete, path = "/server/auth", tag = "auth",
    params(SessionToken),
    responses(
        (status = 200, description = "Logged out"),
        (status = 401, description = "UNAUTHENTICATED or SESSION_EXPIRED", body = ApiError),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    state.auth.logout(session_token(&headers)).await?;
    Ok(axum::Json(serde_json::json!({})))
}
