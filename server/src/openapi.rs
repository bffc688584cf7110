//! The OpenAPI documents, one per port, generated from the handlers and the `models` types so
//! they cannot drift from the code. Each port serves its own at `GET /openapi.json`; copies are
//! committed under `server/openapi/` and a test fails when they differ from what the code
//! generates.

use axum::{Json, http::header, response::IntoResponse};
use utoipa::OpenApi;

/// The license protocol (license port, default 1400).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "license-server license protocol",
        description = "What client machines speak on the license port: open a session, ask for \
            licenses, send heartbeats, release, close. Every error has the body \
            {\"error\": {\"code\", \"message\"}}. See the README's \"License protocol\" for the \
            rules (search order, waiting, credits, heartbeats, idempotency)."
    ),
    paths(
        crate::license_port::open_session,
        crate::license_port::request_license,
        crate::license_port::release_license,
        crate::license_port::heartbeat,
        crate::license_port::close_session,
        crate::status::health,
    ),
    tags((name = "sessions", description = "Sessions and licenses"), (name = "status"))
)]
pub struct LicensePortDoc;

/// The API port (default 1401): status data. The admin API will join it.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "license-server API port",
        description = "The status page's data, and the admin API. Every error has the body \
            {\"error\": {\"code\", \"message\"}}."
    ),
    paths(crate::status::data_json, crate::status::health),
    tags((name = "status"))
)]
pub struct ApiPortDoc;

pub async fn license_port() -> impl IntoResponse {
    document(LicensePortDoc::openapi())
}

pub async fn api_port() -> impl IntoResponse {
    document(ApiPortDoc::openapi())
}

fn document(doc: utoipa::openapi::OpenApi) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Json(doc))
}
