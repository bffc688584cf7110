//! The two ports' routers, put together from the rooms: the license port (the license protocol,
//! `/health`, its OpenAPI document) and the API port (the status page and its data, the metrics,
//! the admin API, the admin screens, the OpenAPI documents). Each room contributes its routes; the
//! layers every answer carries are added here, once per port: the common ones
//! ([`with_common_layers`]), the measurement of every request for `GET /metrics`, and on the API
//! port compression (br, gzip) and a time limit.

use std::time::{Duration, Instant};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use models::ErrorCode;
use tower_http::{compression::CompressionLayer, set_header::SetResponseHeaderLayer};

use crate::{
    admin,
    app::AppState,
    http::{AppError, assets, layers::with_common_layers},
    openapi, peers, protocol, status,
};

pub const STATUS_PAGE: &str = "/status/index.html";
/// The admin screens: client-side routes of the same app, so every address below it serves the
/// app, which then shows the screen (a bookmark or a reload lands on the right one).
pub const ADMIN_PAGE: &str = "/admin";

/// The longest a request of the API port may take: calls to the vendor service give up after
/// 10 s, everything else answers in milliseconds. (The license port has none: a license request
/// may wait for a seat as long as its client asked.)
pub const API_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
        .with_state(state.clone());
    if let Some(members) = members {
        router = router.merge(members);
    }
    measured(with_common_layers(router), "license", state)
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
        .route(ADMIN_PAGE, get(assets::admin_page))
        .route("/admin/", get(|| async { Redirect::to(ADMIN_PAGE) }))
        .route("/admin/{*screen}", get(assets::admin_page))
        .route(STATUS_PAGE, get(assets::status_page))
        .route("/status", get(to_status_page))
        .route("/status/", get(to_status_page))
        .route("/", get(to_status_page))
        .route("/assets/{*path}", get(assets::asset))
        .route("/robots.txt", get(assets::robots))
        .route("/openapi.json", get(openapi::api_port))
        .layer(middleware::from_fn(time_limit))
        .with_state(state.clone());
    // JSON answers compressed for clients that ask (the embedded UI comes compressed already,
    // and says so, so it is left alone).
    let routes = with_common_layers(routes).layer(CompressionLayer::new().br(true).gzip(true));
    measured(routes, "api", state)
}

/// Answers `503 REQUEST_TIMEOUT` to a request that takes longer than [`API_REQUEST_TIMEOUT`].
async fn time_limit(request: Request, next: Next) -> Response {
    match tokio::time::timeout(API_REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RequestTimeout,
            format!(
                "the request took longer than {} s; try again",
                API_REQUEST_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    }
}

/// Records every answer of the port in the server's request metrics, by route pattern.
fn measured(router: Router, port: &'static str, state: AppState) -> Router {
    router.layer(middleware::from_fn_with_state(
        (state, port),
        |State((state, port)): State<(AppState, &'static str)>,
         request: Request,
         next: Next| async move {
            let started = Instant::now();
            let method = method_label(request.method());
            // A clone of the matched path is a reference count, not a copy of the text.
            let route = request.extensions().get::<MatchedPath>().cloned();
            let response = next.run(request).await;
            state.requests.record(
                port,
                method,
                route.as_ref().map_or("(unmatched)", MatchedPath::as_str),
                response.status().as_u16(),
                started.elapsed(),
            );
            response
        },
    ))
}

/// The method as a label: one of the standard ones, or `OTHER`, so clients cannot add series.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}
