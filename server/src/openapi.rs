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
        crate::protocol::open_session,
        crate::protocol::request_license,
        crate::protocol::release_license,
        crate::protocol::heartbeat,
        crate::protocol::close_session,
        crate::status::health,
        crate::status::ready,
    ),
    tags((name = "sessions", description = "Sessions and licenses"), (name = "status")),
    modifiers(&SessionTokenScheme)
)]
pub struct LicensePortDoc;

/// The `session_token` security scheme of the license protocol: the token `POST /v1/sessions`
/// answers, as `Authorization: Bearer`.
struct SessionTokenScheme;

impl utoipa::Modify for SessionTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The session_token that POST /v1/sessions answered; every other call on the \
                 session carries it.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("session_token", SecurityScheme::Http(scheme));
    }
}

/// The API port (default 1401): status data; [`api_port_doc`] adds the admin API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "license-server API port",
        description = "The status page's data, and the admin API. Every error has the body \
            {\"error\": {\"code\", \"message\"}}."
    ),
    paths(
        crate::status::data_json,
        crate::status::sessions_json,
        crate::status::history_json,
        crate::status::live::events,
        crate::status::health,
        crate::status::ready,
        crate::status::metrics::metrics
    ),
    // Named by the sessions query's parameters, which do not bring their schemas along.
    components(schemas(models::SessionSort, models::SortOrder)),
    tags((name = "status"))
)]
pub struct ApiPortDoc;

/// Everything: the admin API and the status endpoints (API port), and the license protocol
/// (license port), in one document for tools that want a single file.
/// The admin API's paths; merged into the documents above.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "license-server",
        description = "The admin API and status endpoints (API port, default 1401) and the license \
            protocol (license port, default 1400; its paths start with /v1/). Every error has the \
            body {\"error\": {\"code\", \"message\"}}. Admin calls carry the session token of \
            POST /server/auth in X-Ak-Session-Id."
    ),
    paths(
        crate::admin::login::login,
        crate::admin::login::logout,
        crate::admin::licenses::active_license,
        crate::admin::licenses::all_licenses,
        crate::admin::licenses::license_history,
        crate::admin::licenses::remove_key_active,
        crate::admin::licenses::remove_key_history,
        crate::admin::licenses::install_license,
        crate::admin::licenses::remove_license,
        crate::admin::licenses::activation_request,
        crate::admin::users::licensed_users,
        crate::admin::users::clear_licensed_users,
        crate::admin::users::clear_licensed_user,
        crate::admin::sessions::release_session,
        crate::admin::ledger::export,
        crate::admin::usage::usage,
        crate::admin::network::network,
        crate::admin::network::change_members,
        crate::admin::remote::vendor_service,
        crate::admin::remote::remote_login,
        crate::admin::remote::remote_logout,
        crate::admin::remote::remote_licenses,
        crate::admin::remote::remote_activate,
        crate::admin::remote::remote_deactivate,
    ),
    tags((name = "auth"), (name = "licenses"), (name = "licensed users"), (name = "sessions"), (name = "ledger"), (name = "usage"), (name = "network"), (name = "status"), (name = "vendor"))
)]
struct AdminDoc;

pub fn license_port_doc() -> utoipa::openapi::OpenApi {
    LicensePortDoc::openapi()
}

/// The API port's: status endpoints and the admin API.
pub fn api_port_doc() -> utoipa::openapi::OpenApi {
    let mut doc = ApiPortDoc::openapi();
    doc.merge(AdminDoc::openapi());
    doc
}

/// The combined document of `/server/openapi.json`.
pub fn combined_doc() -> utoipa::openapi::OpenApi {
    let mut doc = AdminDoc::openapi();
    doc.merge(ApiPortDoc::openapi());
    doc.merge(LicensePortDoc::openapi());
    doc
}

pub async fn combined() -> impl IntoResponse {
    document(combined_doc())
}

pub async fn license_port() -> impl IntoResponse {
    document(license_port_doc())
}

pub async fn api_port() -> impl IntoResponse {
    document(api_port_doc())
}

fn document(doc: utoipa::openapi::OpenApi) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Json(doc))
}
