//! The admin API's `remote/...` endpoints: the license server calls the vendor licensing service
//! (`--vendor-url`) on an administrator's behalf, and installs what it activates through the same
//! path as an uploaded file (`Inventory::install`: every check of a license file applies, so a
//! vendor answer signed by an unknown key or bound to another server is refused, and nothing is
//! written).
//!
//! The licensing token is the vendor's own token, passed through in `X-Lic-Session-Id`: the
//! license server keeps nothing, so a licensing token lives exactly as long as the vendor's.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{post, put},
};
use models::{
    ActivateRequest, Activated, ApiError, Deactivated, ErrorCode, LicenseAnswer, LoginAnswer,
    LoginRequest, RemoteLicenses, VendorService, headers,
};
use reqwest::Method;
use serde::{Serialize, de::DeserializeOwned};

use super::extract::{Editor, LicensingToken, Refused, SessionToken, Viewer};
use crate::{
    anchoring,
    app::AppState,
    http::{
        AppError,
        documented::JsonRefused,
        extract::{Json, Path},
    },
    licensing::install::{InstallError, RemoveError},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/server/manage/license/remote",
            axum::routing::get(vendor_service),
        )
        .route(
            "/server/manage/license/remote/auth",
            post(remote_login).delete(remote_logout),
        )
        .route(
            "/server/manage/license/remote/licenses",
            axum::routing::get(remote_licenses),
        )
        .route(
            "/server/manage/license/remote/licenses/{key}",
            put(remote_activate),
        )
        .route(
            "/server/manage/license/remote/licenses/{key}/activations/{server_id}",
            axum::routing::delete(remote_deactivate),
        )
}

/// What the vendor answered that the caller must hear about.
enum VendorAnswer {
    Status(StatusCode, ApiError),
}

async fn call_vendor<T: DeserializeOwned>(
    state: &AppState,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&impl Serialize>,
) -> Result<Result<T, VendorAnswer>, AppError> {
    let vendor = state.vendor.as_ref().ok_or_else(|| {
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::VendorNotConfigured,
            "no vendor licensing service is configured; start the server with --vendor-url",
        )
    })?;
    let base = vendor.url.as_str();
    let unreachable = |why: String| {
        tracing::warn!(vendor = %base, error = %why, "the vendor licensing service could not be reached");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::VendorUnreachable,
            format!("the vendor licensing service at {base} could not be reached: {why}"),
        )
    };
    match vendor.call(method, path, token, body).await {
        Ok(Ok(answer)) => Ok(Ok(answer)),
        Ok(Err((status, error))) => Ok(Err(VendorAnswer::Status(status, error))),
        Err(why) => Err(unreachable(why)),
    }
}

/// What [`call_as_account`] answers when it fails, as the OpenAPI documents list it.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
enum AsAccountRefused {
    /// LICENSING_SESSION_NOT_FOUND
    #[response(status = 404)]
    NoSession(ApiError),
    /// VENDOR_UNREACHABLE
    #[response(status = 500)]
    Unreachable(ApiError),
}

/// A call without a body, as the vendor account whose licensing token the request carries; any
/// refusal means the licensing session is gone.
async fn call_as_account<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    method: Method,
    path: &str,
) -> Result<T, AppError> {
    let token = licensing_token(headers)?;
    call_vendor(state, method, path, Some(&token), None::<&()>)
        .await?
        .map_err(|_| session_not_found())
}

/// A vendor's refusal of a call made with a licensing token: `401` means the licensing session is
/// gone; otherwise its status and its code when it is one of the `expected` ones, else
/// `VENDOR_REFUSED`.
fn refused(answer: VendorAnswer, expected: &[ErrorCode]) -> AppError {
    let VendorAnswer::Status(status, error) = answer;
    if status == StatusCode::UNAUTHORIZED {
        return session_not_found();
    }
    let code = ErrorCode::parse(&error.error.code)
        .filter(|code| expected.contains(code))
        .unwrap_or(ErrorCode::VendorRefused);
    AppError::new(status, code, error.error.message)
}

fn licensing_token(headers: &HeaderMap) -> Result<String, AppError> {
    headers
        .get(headers::LICENSING_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(session_not_found)
}

fn session_not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::LicensingSessionNotFound,
        "no valid licensing token in X-Lic-Session-Id; log in to the vendor first",
    )
}

/// Log in to the vendor licensing service: `principal` and `secret` are passed through.
#[utoipa::path(
    post, path = "/server/manage/license/remote/auth", tag = "vendor",
    params(SessionToken),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "The licensing token and the vendor account", body = LoginAnswer),
        (status = 400, description = "INVALID_JSON: not JSON", body = ApiError),
        (status = 401, description = "LOGIN_DENIED by the vendor, or no admin session", body = ApiError),
        (status = 403, body = ApiError),
        (status = 429, description = "TOO_MANY_ATTEMPTS: the vendor refuses more logins for now", body = ApiError),
        (status = 500, description = "VENDOR_UNREACHABLE or VENDOR_NOT_CONFIGURED", body = ApiError),
        JsonRefused,
    )
)]
pub async fn remote_login(
    State(state): State<AppState>,
    _: Viewer,
    Json(request): Json<LoginRequest>,
) -> Result<axum::Json<LoginAnswer>, AppError> {
    match call_vendor(
        &state,
        Method::POST,
        "/vendor/v1/auth",
        None,
        Some(&request),
    )
    .await?
    {
        Ok(answer) => Ok(axum::Json(answer)),
        Err(VendorAnswer::Status(StatusCode::TOO_MANY_REQUESTS, error)) => Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyAttempts,
            error.error.message,
        )),
        Err(VendorAnswer::Status(_, error)) => Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::LoginDenied,
            format!("the vendor denied the login: {}", error.error.message),
        )),
    }
}

/// Log out of the vendor licensing service.
#[utoipa::path(
    delete, path = "/server/manage/license/remote/auth", tag = "vendor",
    params(SessionToken, LicensingToken),
    responses(
        (status = 200, description = "Logged out of the vendor"),
        Refused,
        AsAccountRefused,
    )
)]
pub async fn remote_logout(
    State(state): State<AppState>,
    _: Viewer,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    call_as_account::<serde_json::Value>(&state, &headers, Method::DELETE, "/vendor/v1/auth")
        .await?;
    Ok(axum::Json(serde_json::json!({})))
}

/// Whether a vendor licensing service is configured (`--vendor-url`), and its address.
#[utoipa::path(
    get, path = "/server/manage/license/remote", tag = "vendor",
    params(SessionToken),
    responses((status = 200, body = VendorService), Refused)
)]
pub async fn vendor_service(State(state): State<AppState>, _: Viewer) -> axum::Json<VendorService> {
    let url = state.vendor.as_ref().map(|v| v.url.to_string());
    axum::Json(VendorService {
        configured: url.is_some(),
        url,
    })
}

/// The licenses the vendor account may activate, with their activation state.
#[utoipa::path(
    get, path = "/server/manage/license/remote/licenses", tag = "vendor",
    params(SessionToken, LicensingToken),
    responses(
        (status = 200, body = RemoteLicenses),
        Refused,
        AsAccountRefused,
    )
)]
pub async fn remote_licenses(
    State(state): State<AppState>,
    _: Viewer,
    headers: HeaderMap,
) -> Result<axum::Json<RemoteLicenses>, AppError> {
    let licenses = call_as_account(&state, &headers, Method::GET, "/vendor/v1/licenses").await?;
    Ok(axum::Json(licenses))
}

/// Activate a license of the vendor account for this server and install it.
#[utoipa::path(
    put, path = "/server/manage/license/remote/licenses/{key}", tag = "vendor",
    params(SessionToken, LicensingToken, ("key" = String, Path)),
    responses(
        (status = 200, description = "Activated and installed", body = LicenseAnswer),
        Refused,
        (status = 404, description = "LICENSE_KEY_NOT_FOUND or LICENSING_SESSION_NOT_FOUND", body = ApiError),
        (status = 409, description = "ACTIVATION_LIMIT: activated on as many servers as it allows", body = ApiError),
        (status = 500, description = "VENDOR_UNREACHABLE, or VENDOR_LICENSE_REFUSED: the vendor's file failed verification and nothing was installed", body = ApiError),
    )
)]
pub async fn remote_activate(
    State(state): State<AppState>,
    Editor(admin): Editor,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<axum::Json<LicenseAnswer>, AppError> {
    let token = licensing_token(&headers)?;
    // Anchor the head first, so the request's own head links to what the vendor kept; a vendor
    // that does not know this server yet records the request's head as the first.
    if let Err(e) = anchoring::reporter::report(&state).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "cannot report the ledger's head before activating"
        );
    }
    let ledger = anchoring::summary(&state, None).await?;
    let seq = ledger.as_ref().map(|l| l.seq);
    let request = ActivateRequest {
        request: state.activation_request(ledger)?,
    };
    let path = format!("/vendor/v1/licenses/{key}/activations");
    let activated: Activated =
        match call_vendor(&state, Method::POST, &path, Some(&token), Some(&request)).await? {
            Ok(activated) => activated,
            Err(answer) => {
                return Err(refused(
                    answer,
                    &[ErrorCode::LicenseKeyNotFound, ErrorCode::ActivationLimit],
                ));
            }
        };
    let installed = match state
        .inventory
        .install(activated.license_file.into_bytes(), Some(&admin.actor()))
        .await
    {
        Ok(outcome) => outcome.installed().clone(),
        Err(InstallError::License(error)) => {
            tracing::warn!(key = %key, error = %error, "the vendor's license file was refused");
            return Err(AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::VendorLicenseRefused,
                format!(
                    "the vendor's license file was refused, nothing was installed: {error} [{}]",
                    error.code()
                ),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    if let Some(seq) = seq {
        anchoring::reported::remember_in(&state, seq).await?;
    }
    tracing::info!(key = %key, by = %admin.actor(), "license activated from the vendor and installed");
    Ok(axum::Json(LicenseAnswer {
        license: installed.verified.license,
    }))
}

/// Deactivate a license of the vendor account for a server (a transfer: the license can then be
/// activated for another one). When the activation is this server's own, this server removes
/// its copy too, so it stops granting from what it gave back.
#[utoipa::path(
    delete, path = "/server/manage/license/remote/licenses/{key}/activations/{server_id}", tag = "vendor",
    params(SessionToken, LicensingToken, ("key" = String, Path), ("server_id" = String, Path)),
    responses(
        (status = 200, description = "Deactivated (and removed here, if it was this server's)", body = Deactivated),
        Refused,
        (status = 404, description = "LICENSE_KEY_NOT_FOUND, ACTIVATION_NOT_FOUND or LICENSING_SESSION_NOT_FOUND", body = ApiError),
        (status = 500, description = "VENDOR_UNREACHABLE", body = ApiError),
    )
)]
pub async fn remote_deactivate(
    State(state): State<AppState>,
    Editor(admin): Editor,
    headers: HeaderMap,
    Path((key, server_id)): Path<(String, String)>,
) -> Result<axum::Json<Deactivated>, AppError> {
    let token = licensing_token(&headers)?;
    let path = format!("/vendor/v1/licenses/{key}/activations/{server_id}");
    let mut deactivated: Deactivated =
        match call_vendor(&state, Method::DELETE, &path, Some(&token), None::<&()>).await? {
            Ok(deactivated) => deactivated,
            Err(answer) => {
                return Err(refused(
                    answer,
                    &[ErrorCode::LicenseKeyNotFound, ErrorCode::ActivationNotFound],
                ));
            }
        };
    let ours = server_id == state.identity.server_id.as_str();
    let installed_ours = state
        .inventory
        .snapshot()
        .scan
        .find(&key)
        .is_some_and(|l| l.verified.license.server_id == server_id);
    if ours && installed_ours {
        match state.inventory.remove(&key, &admin.actor()).await {
            Ok(_) | Err(RemoveError::NotInstalled(_)) => deactivated.removed_here = true,
            Err(RemoveError::Io(e)) => return Err(AppError::Internal(e)),
        }
    }
    tracing::info!(key = %key, server_id = %server_id, by = %admin.actor(), removed_here = deactivated.removed_here, "license deactivated at the vendor");
    Ok(axum::Json(deactivated))
}
