//! The license port's router: the license protocol that client machines speak (see the README's
//! "License protocol"). The handlers only translate HTTP; the rules live in `sessions::Engine`.

use std::net::SocketAddr;

use axum::{
    Router,
    extract::{ConnectInfo, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{delete, get, post},
};
use models::{OpenSession, Released, RequestLicense};

use crate::{
    api::with_common_layers,
    error::AppError,
    extract::{Json, Path},
    state::AppState,
    status,
};

pub fn router(state: AppState) -> Router {
    with_common_layers(
        Router::new()
            .route("/health", get(status::health))
            .route("/v1/sessions", post(open_session))
            .route("/v1/sessions/{session_id}", delete(close_session))
            .route("/v1/sessions/{session_id}/licenses", post(request_license))
            .route(
                "/v1/sessions/{session_id}/licenses/{license_id}",
                delete(release_license),
            )
            .route("/v1/sessions/{session_id}/heartbeat", post(heartbeat))
            .with_state(state),
    )
}

async fn open_session(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<OpenSession>,
) -> Result<impl IntoResponse, AppError> {
    // The address the server sees, which is what an administrator can trace; an IPv4 client of
    // a dual-stack listener shows as plain IPv4.
    let ip = peer.ip().to_canonical();
    let opened = state.engine.open_session(request, ip).await?;
    Ok((StatusCode::CREATED, axum::Json(opened)))
}

async fn request_license(
    State(state): State<AppState>,
    Path(session_id): Path<u64>,
    Json(request): Json<RequestLicense>,
) -> Result<impl IntoResponse, AppError> {
    let granted = state.engine.request_license(session_id, request).await?;
    Ok(axum::Json(granted))
}

async fn release_license(
    State(state): State<AppState>,
    Path((session_id, license_id)): Path<(u64, u64)>,
) -> Result<impl IntoResponse, AppError> {
    let credits_used = state.engine.release(session_id, license_id).await?;
    Ok(axum::Json(Released { credits_used }))
}

async fn heartbeat(
    State(state): State<AppState>,
    Path(session_id): Path<u64>,
) -> Result<impl IntoResponse, AppError> {
    state.engine.heartbeat(session_id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn close_session(
    State(state): State<AppState>,
    Path(session_id): Path<u64>,
) -> Result<impl IntoResponse, AppError> {
    Ok(axum::Json(state.engine.close(session_id, None).await?))
}
