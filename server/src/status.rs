//! `GET /status/data.json` (contract: `shared/spec/status.md`) and the health checks.

use axum::{Json, extract::State, http::header, response::IntoResponse};
use models::StatusData;
use serde_json::json;

use time::OffsetDateTime;

use crate::{pool::Pool, state::AppState};

/// The status document for the pool the request names. Never cached: it is a live view.
#[utoipa::path(
    get, path = "/status/data.json", tag = "status",
    params(("X-Pool-ID" = Option<String>, Header, description = "A cartridge pool; without it, the default pool")),
    responses(
        (status = 200, description = "Cartridges and sessions of the pool, and the servers", body = StatusData),
        (status = 400, description = "INVALID_POOL_ID", body = models::ApiError),
    )
)]
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
#[utoipa::path(
    get, path = "/health", tag = "status",
    responses((status = 200, description = "`{\"status\": \"ok\", \"server_id\"}`"))
)]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"status": "ok", "server_id": state.identity.server_id.as_str()})),
    )
}
