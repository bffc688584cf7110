//! Licensed users: who counts against the active license's user limit, and clearing them.

use axum::{extract::State, http::StatusCode};
use models::{ApiError, ErrorCode, LicensedUser, LicensedUsers, LicensedUsersAnswer};

use super::{
    extract::{Editor, Refused, SessionToken, Viewer},
    licenses::{NoActiveLicense, require_license},
};
use crate::{
    app::AppState,
    http::{AppError, extract::Path},
};

/// The licensed users: everyone who authenticated, counted against the license's user limit.
#[utoipa::path(
    get, path = "/server/manage/license/users", tag = "licensed users",
    params(SessionToken),
    responses(
        (status = 200, body = LicensedUsersAnswer),
        Refused,
        NoActiveLicense,
    )
)]
pub async fn licensed_users(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<axum::Json<LicensedUsersAnswer>, AppError> {
    require_license(&state)?;
    let users: Vec<LicensedUser> = state
        .auth
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

/// Clear every licensed user. Those logged in now stay logged in.
#[utoipa::path(
    delete, path = "/server/manage/license/users", tag = "licensed users",
    params(SessionToken),
    responses(
        (status = 200, body = LicensedUsersAnswer),
        Refused,
        NoActiveLicense,
    )
)]
pub async fn clear_licensed_users(
    State(state): State<AppState>,
    Editor(admin): Editor,
) -> Result<axum::Json<LicensedUsersAnswer>, AppError> {
    require_license(&state)?;
    let (_, remaining) = state
        .auth
        .clear_licensed_users(None, &admin.actor())
        .await?;
    Ok(count_answer(remaining))
}

/// Clear one licensed user. They stay logged in if they are.
#[utoipa::path(
    delete, path = "/server/manage/license/users/{realm}/{principal}", tag = "licensed users",
    params(SessionToken, ("realm" = String, Path), ("principal" = String, Path)),
    responses(
        (status = 200, description = "The remaining count", body = LicensedUsersAnswer),
        Refused,
        (status = 404, description = "LICENSE_KEY_NOT_FOUND or LICENSE_USER_NOT_FOUND", body = ApiError),
    )
)]
pub async fn clear_licensed_user(
    State(state): State<AppState>,
    Editor(admin): Editor,
    Path((realm, principal)): Path<(String, String)>,
) -> Result<axum::Json<LicensedUsersAnswer>, AppError> {
    require_license(&state)?;
    let (removed, remaining) = state
        .auth
        .clear_licensed_users(Some((&realm, &principal)), &admin.actor())
        .await?;
    if removed == 0 {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::LicenseUserNotFound,
            format!("{principal} of realm {realm} is not a licensed user"),
        ));
    }
    Ok(count_answer(remaining))
}

fn count_answer(remaining: u64) -> axum::Json<LicensedUsersAnswer> {
    axum::Json(LicensedUsersAnswer {
        license: LicensedUsers {
            num_authenticated_users: remaining,
            authenticated_users: None,
        },
    })
}
