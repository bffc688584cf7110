//! What every answer of every port carries: JSON errors for unknown paths and methods, request
//! tracing, and headers that keep browsers from misusing an answer.

use axum::{
    Router,
    http::{HeaderName, HeaderValue, Uri, header},
};
use models::ErrorCode;
use tower_http::{set_header::SetResponseHeaderLayer, trace::TraceLayer};

use super::error::AppError;

/// Adds the common layers to a port's router. A response may set its own
/// Content-Security-Policy (the status page does); the default allows nothing, which is right for
/// JSON.
pub fn with_common_layers(router: Router) -> Router {
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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    for (name, value) in default_headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router.layer(TraceLayer::new_for_http())
}

/// Unknown paths get the JSON error shape too.
async fn not_found(uri: Uri) -> AppError {
    AppError::new(
        axum::http::StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no such path: {}", uri.path()),
    )
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this method is not allowed on this path",
    )
}
