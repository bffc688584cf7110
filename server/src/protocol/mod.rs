//! The license protocol that client machines speak on the license port (see the README's
//! "License protocol"). The handlers only translate HTTP; the rules live in `engine::Engine`.

use std::net::SocketAddr;

use axum::{
    Router,
    extract::{ConnectInfo, Extension, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{delete, post},
};
use models::{ApiError, OpenSession, RefusalReason, Released, RequestLicense};

use crate::{
    app::AppState,
    auth::AuthError,
    engine,
    http::{
        AppError,
        documented::{JsonRefused, PathRefused},
        extract::{Bearer, CameTo, Json, Path},
    },
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(open_session))
        .route("/v1/sessions/{session_id}", delete(close_session))
        .route("/v1/sessions/{session_id}/licenses", post(request_license))
        .route(
            "/v1/sessions/{session_id}/licenses/{license_id}",
            delete(release_license),
        )
        .route("/v1/sessions/{session_id}/heartbeat", post(heartbeat))
}

/// What every write may answer when the ledger cannot be written, as the OpenAPI documents
/// list it.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
enum LedgerDown {
    /// LEDGER_UNAVAILABLE; or NO_QUORUM, on a member of a failover network without a coordinator
    /// that a majority stands behind
    #[response(status = 503)]
    Unavailable(ApiError),
}

/// What a call on a session answers without the session's token, or with another's.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
enum TokenRefused {
    /// SESSION_TOKEN_REQUIRED: no `Authorization: Bearer SESSION_TOKEN`
    #[response(status = 401)]
    Missing(ApiError),
    /// SESSION_TOKEN_WRONG: the token is not this session's
    #[response(status = 403)]
    Wrong(ApiError),
}

/// Open a session.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions",
    request_body = OpenSession,
    responses(
        (status = 201, description = "The session is open; later calls carry its session_token as `Authorization: Bearer`", body = models::SessionOpened),
        (status = 400, description = "INVALID_HOST, INVALID_USER, INVALID_MESSAGE, INVALID_POOL_ID, or INVALID_JSON (not JSON)", body = ApiError),
        (status = 403, description = "LICENSE_USER_LIMIT: a new `user` beyond the license's limit", body = ApiError),
        JsonRefused,
        LedgerDown,
    )
)]
pub async fn open_session(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    came_to: Option<Extension<CameTo>>,
    Json(request): Json<OpenSession>,
) -> Result<impl IntoResponse, AppError> {
    // The address the server sees, which is what an administrator can trace; an IPv4 client of
    // a dual-stack listener shows as plain IPv4.
    let ip = peer.ip().to_canonical();
    if let Some(user) = &request.user {
        engine::check_user(user)?;
        let limit = state.inventory.user_limit();
        if let Err(refused) = state.auth.admit(&user.realm, &user.principal, limit).await {
            if matches!(refused, AuthError::UserLimit { .. })
                && let Err(e) = state
                    .engine
                    .refuse_session(request, ip, RefusalReason::UserLimit)
                    .await
            {
                tracing::warn!(error = %e, "cannot record a session refused for the user limit");
            }
            return Err(refused.into());
        }
    }
    // In a failover network the session is the member's the client came to.
    let on = match (&state.network, came_to) {
        (_, Some(Extension(CameTo(member)))) => Some(member),
        (Some(_), None) => Some(state.identity.server_id.to_string()),
        (None, None) => None,
    };
    let opened = state.engine.open_session(request, ip, on).await?;
    Ok((StatusCode::CREATED, axum::Json(opened)))
}

/// Ask for a license; waits up to `wait_s` when none is free.
#[utoipa::path(
    post, path = "/v1/sessions/{session_id}/licenses", tag = "sessions",
    security(("session_token" = [])),
    params(("session_id" = u64, Path)),
    request_body = RequestLicense,
    responses(
        TokenRefused,
        (status = 200, description = "Granted: the cartridge that answered", body = models::Granted),
        (status = 400, description = "INVALID_REQUEST_ID, INVALID_PATH, or INVALID_JSON (not JSON)", body = ApiError),
        (status = 404, description = "UNKNOWN_SESSION or UNKNOWN_PRODUCT", body = ApiError),
        (status = 409, description = "NO_LICENSE_AVAILABLE (after waiting)", body = ApiError),
        (status = 410, description = "SESSION_ENDED", body = ApiError),
        JsonRefused,
        LedgerDown,
    )
)]
pub async fn request_license(
    State(state): State<AppState>,
    Path(session_id): Path<u64>,
    Bearer(token): Bearer,
    Json(request): Json<RequestLicense>,
) -> Result<impl IntoResponse, AppError> {
    let granted = state
        .engine
        .request_license(session_id, token.as_deref(), request)
        .await?;
    Ok(axum::Json(granted))
}

/// Release a license; credit licenses are debited `max(1, ceil(seconds held))`.
#[utoipa::path(
    delete, path = "/v1/sessions/{session_id}/licenses/{license_id}", tag = "sessions",
    security(("session_token" = [])),
    params(("session_id" = u64, Path), ("license_id" = u64, Path)),
    responses(
        TokenRefused,
        (status = 200, description = "Released (again: the same answer)", body = Released),
        (status = 404, description = "UNKNOWN_LICENSE", body = ApiError),
        PathRefused,
        LedgerDown,
    )
)]
pub async fn release_license(
    State(state): State<AppState>,
    Path((session_id, license_id)): Path<(u64, u64)>,
    Bearer(token): Bearer,
) -> Result<impl IntoResponse, AppError> {
    let credits_used = state
        .engine
        .release(session_id, token.as_deref(), license_id)
        .await?;
    Ok(axum::Json(Released { credits_used }))
}

/// Keep the session alive.
#[utoipa::path(
    post, path = "/v1/sessions/{session_id}/heartbeat", tag = "sessions",
    security(("session_token" = [])),
    params(("session_id" = u64, Path)),
    responses(
        TokenRefused,
        (status = 204, description = "Alive"),
        (status = 404, description = "UNKNOWN_SESSION", body = ApiError),
        (status = 410, description = "SESSION_ENDED: dropped or finished", body = ApiError),
        PathRefused,
    )
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    Path(session_id): Path<u64>,
    Bearer(token): Bearer,
) -> Result<impl IntoResponse, AppError> {
    state.engine.heartbeat(session_id, token.as_deref())?;
    Ok(StatusCode::NO_CONTENT)
}

/// Close the session, releasing everything it holds.
#[utoipa::path(
    delete, path = "/v1/sessions/{session_id}", tag = "sessions",
    security(("session_token" = [])),
    params(("session_id" = u64, Path)),
    responses(
        TokenRefused,
        (status = 200, description = "Finished (again: the same status)", body = models::SessionClosed),
        (status = 404, description = "UNKNOWN_SESSION", body = ApiError),
        PathRefused,
        LedgerDown,
    )
)]
pub async fn close_session(
    State(state): State<AppState>,
    Path(session_id): Path<u64>,
    Bearer(token): Bearer,
) -> Result<impl IntoResponse, AppError> {
    Ok(axum::Json(
        state.engine.close(session_id, token.as_deref()).await?,
    ))
}
