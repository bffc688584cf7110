//! The two ports' routers, put together from the rooms: the license port (the license protocol,
//! `/health`, its OpenAPI document) and the API port (the status page and its data, the admin API,
//! the admin screens, the OpenAPI documents). Each room contributes its routes; the layers every
//! answer carries are added here, once per port.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, header},
    middleware,
    response::Redirect,
    routing::get,
};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{
    admin,
    app::AppState,
    http::{assets, layers::with_common_layers},
    openapi, peers, protocol, status,
};

pub const STATUS_PAGE: &str = "/status/index.html";
/// The admin screens: client-side routes of the same app, so every address below it serves the
/// app, which then shows the screen (a bookmark or a reload lands on the right one).
pub const ADMIN_PAGE: &str = "/admin";

/// The license port: what client machines speak; on a member of a failover network, also what
/// the other members call, and the protocol's changes are passed on to the coordinator.
pub fn license_port(state: AppState) -> Router {
    let mut protocol = protocol::routes();
    let mut members = None;
    if let Some(network) = &state.network {
        let answering = protocol::routes().with_state(state.clone());
        members = Some(peers::members::routes(
            state.clone(),
            network.clone(),
            answering,
        ));
        protocol = protocol.route_layer(middleware::from_fn_with_state(
            state.clone(),
            peers::forward::to_coordinator,
        ));
    }
    let mut router = protocol
        .route("/health", get(status::health))
        .route("/ready", get(status::ready))
        .route("/openapi.json", get(openapi::license_port))
        .with_state(state);
    if let Some(members) = members {
        router = router.merge(members);
    }
    with_common_layers(router)
}

/// The API port: the status page, its data, the admin API and screens.
pub fn api_port(state: AppState) -> Router {
    let to_status_page = || async { Redirect::to(STATUS_PAGE) };
    // Answers of the admin API are about one administrator's session: never to be cached.
    let admin = admin::routes()
        .route("/server/openapi.json", get(openapi::combined))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(DefaultBodyLimit::max(admin::BODY_LIMIT));
    let routes = Router::new()
        .merge(admin)
        .merge(status::routes())
        .route(ADMIN_PAGE, get(assets::index))
        .route("/admin/", get(|| async { Redirect::to(ADMIN_PAGE) }))
        .route("/admin/{*screen}", get(assets::index))
        .route(STATUS_PAGE, get(assets::index))
        .route("/status", get(to_status_page))
        .route("/status/", get(to_status_page))
        .route("/", get(to_status_page))
        .route("/assets/{*path}", get(assets::asset))
        .route("/robots.txt", get(assets::robots))
        .route("/openapi.json", get(openapi::api_port))
        .with_state(state);
    with_common_layers(routes)
}
