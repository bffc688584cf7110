//! Force-releasing a session that hangs on to its licenses.

use axum::{extract::State, http::StatusCode};
use models::{ApiError, ErrorCode, SessionClosed};

use super::extract::{Editor, Refused, SessionToken};
use crate::{
    app::AppState,
    http::{AppError, documented::PathRefused, extract::Path},
};

/// Force-release a stuck session: it becomes `dropped` (not `finished`: its job did not end) and
/// its licenses return. The ledger records who released it.
#[utoipa::path(
    delete, path = "/server/manage/sessions/{session_id}", tag = "sessions",
    params(SessionToken, ("session_id" = u64, Path)),
    responses(
        (status = 200, body = SessionClosed),
        Refused,
        (status = 404, description = "UNKNOWN_SESSION", body = ApiError),
        (status = 409, description = "SESSION_ENDED: it had already finished or been dropped", body = ApiError),
        PathRefused,
    )
)]
pub async fn release_session(
    State(state): State<AppState>,
    Editor(admin): Editor,
    Path(session_id): Path<u64>,
) -> Result<axum::Json<SessionClosed>, AppError> {
    // A client may close twice without harm; an administrator who asks to release a session that
    // already ended must hear that nothing was released (another admin, or the client, was first).
    if let Some(status) = state
        .engine
        .session_status(session_id)
        .filter(|s| *s != models::SessionStatus::Running)
    {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            ErrorCode::SessionEnded,
            format!(
                "session {session_id} had already ended ({}); nothing was released",
                status.as_str()
            ),
        ));
    }
    let closed = state.engine.force_close(session_id, admin.actor()).await?;
    tracing::info!(session_id, by = %admin.actor(), "session released by an administrator");
    Ok(axum::Json(closed))
}
