//! The API port's router: the status page and its data, the licensing admin REST API
//! (`admin`, `remote`), and the OpenAPI documents.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, header},
    response::Redirect,
    routing::get,
};
use tower_http::{set_header::SetResponseHeaderLayer, trace::TraceLayer};

use crate::{admin, assets, error, openapi, remote, state::AppState, status};

pub const STATUS_PAGE: &str = "/status/index.html";
/// The admin screens: client-side routes of the same app, so every address below it serves the
/// app, which then shows the screen (a bookmark or a reload lands on the right one).
pub const ADMIN_PAGE: &str = "/admin";

pub fn router(state: AppState) -> Router {
    let to_status_page = || async { Redirect::to(STATUS_PAGE) };
    // Answers of the admin API are about one administrator's session: never to be cached.
    let admin = admin::routes()
        .merge(remote::routes())
        .route("/server/openapi.json", get(openapi::combined))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(DefaultBodyLimit::max(admin::BODY_LIMIT));
    let routes = Router::new()
        .merge(admin)
        .route("/status/data.json", get(status::data_json))
        .route("/status/sessions.json", get(status::sessions_json))
        .route("/status/history.json", get(status::history_json))
        .route(ADMIN_PAGE, get(assets::index))
        .route("/admin/", get(|| async { Redirect::to(ADMIN_PAGE) }))
        .route("/admin/{*screen}", get(assets::index))
        .route(STATUS_PAGE, get(assets::index))
        .route("/status", get(to_status_page))
        .route("/status/", get(to_status_page))
        .route("/", get(to_status_page))
        .route("/assets/{*path}", get(assets::asset))
        .route("/robots.txt", get(assets::robots))
        .route("/health", get(status::health))
        .route("/openapi.json", get(openapi::api_port))
        .with_state(state);
    with_common_layers(routes)
}

/// What every answer of either port carries: JSON errors for unknown paths and methods, request
/// tracing, and headers that keep browsers from misusing an answer. A response may set its own
/// Content-Security-Policy (the status page does); the default allows nothing, which is right for
/// JSON.
pub(crate) fn with_common_layers(router: Router) -> Router {
    let default_headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    let mut router = router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    for (name, value) in default_headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router.layer(TraceLayer::new_for_http())
}
