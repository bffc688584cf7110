//! The licensing admin REST API on the API port (`shared/spec/licensing-api.md`): login, the
//! local license files, offline activation requests, licensed users, and force-releasing a
//! session. The rules live elsewhere (`auth`, `licenses`, `sessions`); these handlers translate.

use std::net::SocketAddr;

use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, FromRequest, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::IntoResponse,
    routing::{delete, get, post},
};
use models::{
    ApiError, License, LicenseAnswer, LicensedUser, LicensedUsers, LicensedUsersAnswer,
    LoginAnswer, LoginRequest, SessionClosed,
};
use time::OffsetDateTime;

use crate::{
    activation,
    auth::{Editor, TOKEN_HEADER, Viewer},
    error::AppError,
    extract::{Json, Path},
    ledger::Event,
    licenses::{InstallError, Installation},
    state::AppState,
};

/// The largest request body the admin API reads: a license file is a few kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/server/auth", post(login).delete(logout))
        .route("/server/manage/licenses/active", get(active_license))
        .route("/server/manage/licenses", get(all_licenses))
        .route("/server/manage/license/install", post(install_license))
        .route("/server/manage/license/create", get(activation_request))
        .route(
            "/server/manage/license/users",
            get(licensed_users).delete(clear_licensed_users),
        )
        .route(
            "/server/manage/license/users/{realm}/{principal}",
            delete(clear_licensed_user),
        )
        .route(
            "/server/manage/sessions/{session_id}",
            delete(release_session),
        )
}

/// Log in as an administrator.
#[utoipa::path(
    post, path = "/server/auth", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in: the token goes into X-Ak-Session-Id", body = LoginAnswer),
        (status = 400, description = "INVALID_JSON", body = ApiError),
        (status = 401, description = "LOGIN_DENIED: unknown principal or wrong secret (the same answer for both)", body = ApiError),
        (status = 403, description = "LICENSE_USER_LIMIT", body = ApiError),
        (status = 429, description = "TOO_MANY_ATTEMPTS, with Retry-After", body = ApiError),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<LoginRequest>,
) -> Result<axum::Json<LoginAnswer>, AppError> {
    let limit = state.inventory.user_limit();
    let answer = state
        .auth
        .login(request, peer.ip().to_canonical(), limit)
        .await?;
    Ok(axum::Json(answer))
}

/// Log out: the token stops working.
#[utoipa::path(
    delete, path = "/server/auth", tag = "auth",
    params(("X-Ak-Session-Id" = String, Header)),
    responses(
        (status = 200, description = "Logged out"),
        (status = 401, description = "UNAUTHENTICATED or SESSION_EXPIRED", body = ApiError),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    state.auth.logout(token).await?;
    Ok(axum::Json(serde_json::json!({})))
}

fn no_license() -> AppError {
    AppError::status(
        StatusCode::NOT_FOUND,
        "LICENSE_KEY_NOT_FOUND",
        "License key not found: no valid license is installed",
    )
}

/// The active license: the valid one installed most recently.
#[utoipa::path(
    get, path = "/server/manage/licenses/active", tag = "licenses",
    params(("X-Ak-Session-Id" = String, Header)),
    responses(
        (status = 200, body = LicenseAnswer),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, description = "LICENSE_KEY_NOT_FOUND", body = ApiError),
    )
)]
pub async fn active_license(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<axum::Json<LicenseAnswer>, AppError> {
    let license = state.inventory.active_license().ok_or_else(no_license)?;
    Ok(axum::Json(LicenseAnswer { license }))
}

/// Every installed license, oldest install first (expired ones included).
#[utoipa::path(
    get, path = "/server/manage/licenses", tag = "licenses",
    params(("X-Ak-Session-Id" = String, Header)),
    responses(
        (status = 200, body = Vec<License>),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
    )
)]
pub async fn all_licenses(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<axum::Json<Vec<License>>, AppError> {
    let snapshot = state.inventory.snapshot();
    Ok(axum::Json(
        snapshot
            .scan
            .licenses
            .iter()
            .map(|l| l.verified.license.clone())
            .collect(),
    ))
}

/// The raw body of a request, with the API's error shape for a body that is too large.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "PAYLOAD_TOO_LARGE"
                } else {
                    "INVALID_BODY"
                };
                AppError::status(rejection.status(), code, rejection.body_text())
            })
    }
}

/// Install a license file: the body is the file, byte for byte (any content type).
#[utoipa::path(
    post, path = "/server/manage/license/install", tag = "licenses",
    params(("X-Ak-Session-Id" = String, Header)),
    request_body(content = String, content_type = "application/octet-stream", description = "The license file"),
    responses(
        (status = 200, description = "Installed (or already installed: the same file)", body = LicenseAnswer),
        (status = 400, description = "LICENSE_MALFORMED, LICENSE_UNTRUSTED_KEY, LICENSE_BAD_SIGNATURE, LICENSE_WRONG_SERVER, LICENSE_EXPIRED, LICENSE_KEY_CONFLICT; nothing was written", body = ApiError),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ApiError),
        (status = 500, description = "the file could not be written", body = ApiError),
    )
)]
pub async fn install_license(
    State(state): State<AppState>,
    Editor(admin): Editor,
    RawBody(body): RawBody,
) -> Result<axum::Json<LicenseAnswer>, AppError> {
    let inventory = &state.inventory;
    let outcome = inventory
        .dir()
        .install(
            body.to_vec(),
            inventory.trusted(),
            &state.identity.server_id,
            &state.store,
            OffsetDateTime::now_utc(),
            Some(&admin.actor()),
        )
        .await;
    let installed = match outcome {
        Ok(Installation::Installed(installed) | Installation::AlreadyInstalled(installed)) => {
            installed
        }
        Err(InstallError::License(error)) => {
            return Err(AppError::bad_request(error.code(), error.to_string()));
        }
        Err(InstallError::Io(error)) => return Err(AppError::Internal(error)),
    };
    // The cartridges appear at once, not at the next poll.
    inventory.refresh().await?;
    tracing::info!(key = installed.key(), by = %admin.actor(), "license installed through the admin API");
    Ok(axum::Json(LicenseAnswer {
        license: installed.verified.license,
    }))
}

/// An offline activation request: a document signed with this server's own key that the vendor
/// needs to issue a license bound to this server. Save it as a file and carry it to the vendor.
#[utoipa::path(
    get, path = "/server/manage/license/create", tag = "licenses",
    params(("X-Ak-Session-Id" = String, Header)),
    responses(
        (status = 200, description = "The request document (a download)", content_type = "application/json"),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
    )
)]
pub async fn activation_request(
    State(state): State<AppState>,
    _: Editor,
) -> Result<impl IntoResponse, AppError> {
    let text = activation::create(&state.identity, &state.server_key)?;
    let id = state.identity.server_id.as_str();
    let file = format!(
        "attachment; filename=\"activation-request-{}.json\"",
        &id[..id.len().min(12)]
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&file).map_err(anyhow::Error::from)?,
            ),
        ],
        text,
    ))
}

/// The licensed users: everyone who authenticated, counted against the license's user limit.
#[utoipa::path(
    get, path = "/server/manage/license/users", tag = "licensed users",
    params(("X-Ak-Session-Id" = String, Header)),
    responses(
        (status = 200, body = LicensedUsersAnswer),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, description = "LICENSE_KEY_NOT_FOUND", body = ApiError),
    )
)]
pub async fn licensed_users(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<axum::Json<LicensedUsersAnswer>, AppError> {
    require_license(&state)?;
    let users: Vec<LicensedUser> = state
        .store
        .licensed_users()
        .await?
        .into_iter()
        .map(|u| LicensedUser {
            principal: u.principal,
            realm: u.realm,
            last_access_date: u.last_access,
        })
        .collect();
    Ok(axum::Json(LicensedUsersAnswer {
        license: LicensedUsers {
            num_authenticated_users: users.len() as u64,
            authenticated_users: Some(users),
        },
    }))
}

fn require_license(state: &AppState) -> Result<(), AppError> {
    state
        .inventory
        .active_license()
        .map(drop)
        .ok_or_else(no_license)
}

/// Clear every licensed user. Those logged in now stay logged in.
#[utoipa::path(
    delete, path = "/server/manage/license/users", tag = "licensed users",
    params(("X-Ak-Session-Id" = String, Header)),
    responses(
        (status = 200, body = LicensedUsersAnswer),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, description = "LICENSE_KEY_NOT_FOUND", body = ApiError),
    )
)]
pub async fn clear_licensed_users(
    State(state): State<AppState>,
    Editor(admin): Editor,
) -> Result<axum::Json<LicensedUsersAnswer>, AppError> {
    require_license(&state)?;
    let (_, remaining) = clear(&state, None, &admin.actor()).await?;
    Ok(count_answer(remaining))
}

/// Clear one licensed user. They stay logged in if they are.
#[utoipa::path(
    delete, path = "/server/manage/license/users/{realm}/{principal}", tag = "licensed users",
    params(("X-Ak-Session-Id" = String, Header), ("realm" = String, Path), ("principal" = String, Path)),
    responses(
        (status = 200, description = "The remaining count", body = LicensedUsersAnswer),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, description = "LICENSE_KEY_NOT_FOUND or LICENSE_USER_NOT_FOUND", body = ApiError),
    )
)]
pub async fn clear_licensed_user(
    State(state): State<AppState>,
    Editor(admin): Editor,
    Path((realm, principal)): Path<(String, String)>,
) -> Result<axum::Json<LicensedUsersAnswer>, AppError> {
    require_license(&state)?;
    let (removed, remaining) = clear(&state, Some((&realm, &principal)), &admin.actor()).await?;
    if removed == 0 {
        return Err(AppError::status(
            StatusCode::NOT_FOUND,
            "LICENSE_USER_NOT_FOUND",
            format!("{principal} of realm {realm} is not a licensed user"),
        ));
    }
    Ok(count_answer(remaining))
}

async fn clear(
    state: &AppState,
    who: Option<(&str, &str)>,
    by: &str,
) -> Result<(u64, u64), AppError> {
    let event = |removed| Event::LicensedUsersCleared {
        realm: who.map(|(realm, _)| realm.to_owned()),
        principal: who.map(|(_, principal)| principal.to_owned()),
        removed,
        by: by.to_owned(),
    };
    // The ledger row is written with the deletion, in one transaction; its count is what the
    // request asked for (all, or one), the store reports what it found.
    let row = event(u64::from(who.is_some())).row(OffsetDateTime::now_utc());
    Ok(state.store.clear_licensed_users(who, row).await?)
}

fn count_answer(remaining: u64) -> axum::Json<LicensedUsersAnswer> {
    axum::Json(LicensedUsersAnswer {
        license: LicensedUsers {
            num_authenticated_users: remaining,
            authenticated_users: None,
        },
    })
}

/// Force-release a stuck session: it becomes `finished` and its licenses return.
#[utoipa::path(
    delete, path = "/server/manage/sessions/{session_id}", tag = "sessions",
    params(("X-Ak-Session-Id" = String, Header), ("session_id" = u64, Path)),
    responses(
        (status = 200, body = SessionClosed),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, description = "UNKNOWN_SESSION", body = ApiError),
        (status = 409, description = "SESSION_ENDED: it had already finished or been dropped", body = ApiError),
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
        return Err(AppError::status(
            StatusCode::CONFLICT,
            "SESSION_ENDED",
            format!(
                "session {session_id} had already ended ({}); nothing was released",
                status.as_str()
            ),
        ));
    }
    let closed = state.engine.close(session_id, Some(admin.actor())).await?;
    tracing::info!(session_id, by = %admin.actor(), "session released by an administrator");
    Ok(axum::Json(closed))
}
