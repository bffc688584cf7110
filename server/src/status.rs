//! `GET /status/data.json` (contract: `shared/spec/status.md`) and the health checks.

use axum::{Json, extract::State, http::header, response::IntoResponse};
use models::StatusData;
use serde_json::json;

use time::OffsetDateTime;

use crate::{pool::Pool, state::AppState};

/// The status document for the pool the request names. Never cached: it is a live view.
pub async fn data_json(State(state): State<AppState>, pool: Pool) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(collect(&state, &pool)),
    )
}

/// The cartridges and sessions of `pool`, and this server.
pub fn collect(state: &AppState, pool: &Pool) -> StatusData {
    let snapshot = state.inventory.snapshot();
    let mut cartridges = Vec::clone(&snapshot.cartridges(pool.name(), OffsetDateTime::now_utc()));
    state.engine.fill_statistics(&mut cartridges, pool.name());
    StatusData {
        cartridges,
        sessions: state.engine.sessions(pool.name()),
        servers: vec![state.identity.record()],
    }
}

/// `GET /health` on both ports: answers as soon as the server accepts requests, for load
/// balancers and start-up scripts.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"status": "ok", "server_id": state.identity.server_id.as_str()})),
    )
}
