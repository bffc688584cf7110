//! The license port's router. Client machines open sessions and ask for licenses here; for now it
//! answers only the health check.

use axum::{Router, routing::get};

use crate::{api::with_common_layers, state::AppState, status};

pub fn router(state: AppState) -> Router {
    with_common_layers(
        Router::new()
            .route("/health", get(status::health))
            .with_state(state),
    )
}
