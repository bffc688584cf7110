//! What the status page reads, and scripts too: `GET /status/data.json` (the whole document:
//! cartridges, sessions, servers), one page of sessions, the cartridges' history, the [`live`]
//! stream of changes, the health check of both ports, and the Prometheus [`metrics`]. Public,
//! read-only, never cached.

use std::sync::Arc;

use axum::{
    Extension, Json, Router, extract::State, http::header, response::IntoResponse, routing::get,
};
use models::{ErrorCode, History, SessionPage, SessionQuery, StatusData};
use serde::Deserialize;
use serde_json::json;

pub mod document;
pub mod live;
pub mod metrics;

use self::document::collect;
use crate::{
    app::AppState,
    engine::Unavailable,
    http::{AppError, extract::Query},
    licensing::pool::Pool,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status/data.json", get(data_json))
        .route("/status/sessions.json", get(sessions_json))
        .route("/status/history.json", get(history_json))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/status/events", get(live::events))
        .route("/metrics", get(metrics::metrics))
        .layer(Extension(Arc::new(live::Hub::default())))
}

/// `?sessions=false` leaves the sessions out (the status page pages them through
/// `/status/sessions.json`); without it the document is whole, as scripts expect.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DataQuery {
    /// `false`: an empty `sessions` array. Default `true`.
    sessions: Option<bool>,
}

/// The pool a status request is about, as the OpenAPI documents list it.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("X-Pool-ID"), parameter_in = Header)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
struct PoolHeader(
    /// A cartridge pool; without it (or empty), the default pool. At most 64 characters, no
    /// control characters.
    #[param(max_length = 64, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    Option<String>,
);

/// What a status request with a bad pool header or query gets, as the OpenAPI documents list it.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
enum BadPoolOrQuery {
    /// INVALID_POOL_ID, INVALID_QUERY
    #[response(status = 400)]
    Invalid(models::ApiError),
}

/// The status document for the pool the request names. Never cached: it is a live view.
#[utoipa::path(
    get, path = "/status/data.json", tag = "status",
    params(PoolHeader, DataQuery),
    responses(
        (status = 200, description = "Cartridges and sessions of the pool, and the servers", body = StatusData),
        BadPoolOrQuery,
    )
)]
pub async fn data_json(
    State(state): State<AppState>,
    pool: Pool,
    Query(query): Query<DataQuery>,
) -> impl IntoResponse {
    let data = collect(&state, &pool, query.sessions.unwrap_or(true));
    ([(header::CACHE_CONTROL, "no-store")], Json(data))
}

/// One page of the pool's sessions, filtered and sorted by the server: what the status page shows
/// of a server with more sessions than a browser should hold.
#[utoipa::path(
    get, path = "/status/sessions.json", tag = "status",
    params(PoolHeader, SessionQuery),
    responses(
        (status = 200, description = "The page, with how many sessions there are and how many matched", body = SessionPage),
        BadPoolOrQuery,
    )
)]
pub async fn sessions_json(
    State(state): State<AppState>,
    pool: Pool,
    Query(query): Query<SessionQuery>,
) -> Result<impl IntoResponse, AppError> {
    if !(1..=models::MAX_PAGE).contains(&query.limit) {
        return Err(AppError::bad_request(
            ErrorCode::InvalidQuery,
            format!("limit must be between 1 and {}", models::MAX_PAGE),
        ));
    }
    // The documents say int64, as JSON tools read numbers.
    if i64::try_from(query.offset).is_err() {
        return Err(AppError::bad_request(
            ErrorCode::InvalidQuery,
            format!("offset must be at most {}", i64::MAX),
        ));
    }
    for (name, filter) in [
        ("host", &query.host),
        ("product", &query.product),
        ("q", &query.q),
    ] {
        if filter
            .as_deref()
            .is_some_and(|text| text.chars().count() > models::MAX_FILTER)
        {
            return Err(AppError::bad_request(
                ErrorCode::InvalidQuery,
                format!("{name} must be at most {} characters", models::MAX_FILTER),
            ));
        }
    }
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(state.engine.session_page(pool.name(), &query)),
    ))
}

/// How busy each cartridge of the pool was: the last 24 hours by the hour (the most licenses held
/// at once, credits used), from the ledger; and the last hour sampled (runcount in use, credits
/// used) since the server started.
#[utoipa::path(
    get, path = "/status/history.json", tag = "status",
    params(PoolHeader),
    responses(
        (status = 200, description = "One series per cartridge that has been used, oldest first", body = History),
        (status = 400, description = "INVALID_POOL_ID", body = models::ApiError),
    )
)]
pub async fn history_json(
    State(state): State<AppState>,
    pool: Pool,
) -> Result<impl IntoResponse, AppError> {
    let mut history = state.engine.history(pool.name());
    state
        .usage
        .recent(pool.name(), time::OffsetDateTime::now_utc(), &mut history)
        .await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(history)))
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

/// `GET /ready` on both ports: whether the server takes changes right now. `503
/// LEDGER_UNAVAILABLE`, with the reason, while the ledger cannot be written (the server retries
/// by itself and turns ready again once writes succeed); `/health` stays `ok` meanwhile, as the
/// process still answers.
#[utoipa::path(
    get, path = "/ready", tag = "status",
    responses(
        (status = 200, description = "`{\"status\": \"ready\", \"server_id\"}`"),
        (status = 503, description = "LEDGER_UNAVAILABLE: changes cannot be recorded; NO_QUORUM: a member of a failover network without a coordinator that a majority stands behind; the message says why", body = models::ApiError),
    )
)]
pub async fn ready(State(state): State<AppState>) -> axum::response::Response {
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    let (code, reason) = match state.engine.unavailable() {
        None => {
            return (
                no_store,
                Json(json!({"status": "ready", "server_id": state.identity.server_id.as_str()})),
            )
                .into_response();
        }
        Some(Unavailable::Ledger(reason)) => (ErrorCode::LedgerUnavailable, reason),
        Some(Unavailable::NoQuorum(reason)) => (ErrorCode::NoQuorum, reason),
    };
    (
        no_store,
        AppError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, code, reason),
    )
        .into_response()
}
