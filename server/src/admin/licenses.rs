//! The local license files: the active one, all of them, installing one, and the offline
//! activation request to carry to the vendor.

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use models::{ApiError, ErrorCode, InstallAnswer, License, LicenseAnswer, LicenseHistory};

use super::extract::{Editor, Refused, SessionToken, Viewer};
use crate::{
    anchoring,
    app::AppState,
    http::{
        AppError,
        extract::{Path, RawBody},
    },
    licensing::install::Installation,
};

/// What an endpoint that needs the active license answers without one, as the OpenAPI documents
/// list it.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
pub(super) enum NoActiveLicense {
    /// LICENSE_KEY_NOT_FOUND
    #[response(status = 404)]
    NotFound(ApiError),
}

fn no_license() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::LicenseKeyNotFound,
        "License key not found: no valid license is installed",
    )
}

/// Licensed users are counted against the active license: without one there are none.
pub(super) fn require_license(state: &AppState) -> Result<(), AppError> {
    state
        .inventory
        .active_license()
        .map(drop)
        .ok_or_else(no_license)
}

/// The active license: the valid one installed most recently.
#[utoipa::path(
    get, path = "/server/manage/licenses/active", tag = "licenses",
    params(SessionToken),
    responses(
        (status = 200, body = LicenseAnswer), Refused,
        NoActiveLicense,
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
    params(SessionToken),
    responses(
        (status = 200, body = Vec<License>),
        Refused,
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

/// Every issue of a license the ledger saw installed, the latest install first (at most 500):
/// who installed it, and when it was removed or replaced by a newer issue of the same key.
#[utoipa::path(
    get, path = "/server/manage/licenses/history", tag = "licenses",
    params(SessionToken),
    responses(
        (status = 200, body = LicenseHistory),
        Refused,
    )
)]
pub async fn license_history(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<axum::Json<LicenseHistory>, AppError> {
    Ok(axum::Json(state.usage.license_history().await?))
}

/// Install a license file: the body is the file, byte for byte (any content type). A newer issue
/// of an installed license (same key, later `issued`) replaces it.
#[utoipa::path(
    post, path = "/server/manage/license/install", tag = "licenses",
    params(SessionToken),
    request_body(content = String, content_type = "application/octet-stream", description = "The license file"),
    responses(
        (status = 200, description = "Installed; or `already_installed`: the same file was, and nothing changed", body = InstallAnswer),
        (status = 400, description = "LICENSE_MALFORMED, LICENSE_UNTRUSTED_KEY, LICENSE_BAD_SIGNATURE, LICENSE_WRONG_SERVER, LICENSE_EXPIRED, LICENSE_KEY_CONFLICT (another issue of this key, not newer, is installed); nothing was written", body = ApiError),
        (status = 409, description = "DUPLICATE_SERIAL: another license with this serial number is installed; nothing was written", body = ApiError),
        Refused,
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ApiError),
        (status = 500, description = "the file could not be written", body = ApiError),
    )
)]
pub async fn install_license(
    State(state): State<AppState>,
    Editor(admin): Editor,
    RawBody(body): RawBody,
) -> Result<axum::Json<InstallAnswer>, AppError> {
    let outcome = state
        .inventory
        .install(body.to_vec(), Some(&admin.actor()))
        .await?;
    let already_installed = matches!(outcome, Installation::AlreadyInstalled(_));
    let installed = outcome.installed();
    tracing::info!(key = installed.key(), already_installed, by = %admin.actor(), "license installed through the admin API");
    Ok(axum::Json(InstallAnswer {
        license: installed.verified.license.clone(),
        already_installed,
    }))
}

/// Remove an installed license: its cartridges stop granting at once; licenses held from it stay
/// with their jobs until released. The ledger records who removed it.
#[utoipa::path(
    delete, path = "/server/manage/licenses/{key}", tag = "licenses",
    params(SessionToken, ("key" = String, Path, description = "The license key")),
    responses(
        (status = 200, description = "Removed: the license as it was", body = LicenseAnswer),
        Refused, NotInstalled,
    )
)]
pub async fn remove_license(
    state: State<AppState>,
    editor: Editor,
    Path(key): Path<String>,
) -> Result<axum::Json<LicenseAnswer>, AppError> {
    remove_key(state, editor, key).await
}

/// What removing a license answers when there is none with the key, as the OpenAPI documents
/// list it.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
enum NotInstalled {
    /// LICENSE_KEY_NOT_FOUND: no license with this key is installed
    #[response(status = 404)]
    NotFound(ApiError),
}

/// Remove the license whose key is `active` (this address is also the active license's, so a
/// license with that key is removed here rather than at `{key}`).
#[utoipa::path(
    delete, path = "/server/manage/licenses/active", tag = "licenses",
    params(SessionToken),
    responses(
        (status = 200, description = "Removed: the license as it was", body = LicenseAnswer),
        Refused, NotInstalled,
    )
)]
pub async fn remove_key_active(
    state: State<AppState>,
    editor: Editor,
) -> Result<axum::Json<LicenseAnswer>, AppError> {
    remove_key(state, editor, "active".to_owned()).await
}

/// Remove the license whose key is `history` (this address is also the license history's).
#[utoipa::path(
    delete, path = "/server/manage/licenses/history", tag = "licenses",
    params(SessionToken),
    responses(
        (status = 200, description = "Removed: the license as it was", body = LicenseAnswer),
        Refused, NotInstalled,
    )
)]
pub async fn remove_key_history(
    state: State<AppState>,
    editor: Editor,
) -> Result<axum::Json<LicenseAnswer>, AppError> {
    remove_key(state, editor, "history".to_owned()).await
}

/// [`remove_license`] for a license whose key is also the name of a route under
/// `/server/manage/licenses/` (`active`, `history`): the static route takes the request.
async fn remove_key(
    State(state): State<AppState>,
    Editor(admin): Editor,
    key: String,
) -> Result<axum::Json<LicenseAnswer>, AppError> {
    let removed = state.inventory.remove(&key, &admin.actor()).await?;
    tracing::info!(key = removed.key(), by = %admin.actor(), "license removed through the admin API");
    Ok(axum::Json(LicenseAnswer {
        license: removed.verified.license,
    }))
}

/// An offline activation request: a document signed with this server's own key that the vendor
/// needs to issue a license bound to this server. Save it as a file and carry it to the vendor.
#[utoipa::path(
    get, path = "/server/manage/license/create", tag = "licenses",
    params(SessionToken),
    responses(
        (status = 200, description = "The request document (a download)", content_type = "application/json"),
        Refused,
    )
)]
pub async fn activation_request(
    State(state): State<AppState>,
    _: Editor,
) -> Result<impl IntoResponse, AppError> {
    let ledger = anchoring::summary(&state, None).await?;
    let seq = ledger.as_ref().map(|l| l.seq);
    let text = state.activation_request(ledger)?;
    if let Some(seq) = seq {
        anchoring::reported::remember_in(&state, seq).await?;
    }
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
