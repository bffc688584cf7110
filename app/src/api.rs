//! Typed client of the server's REST API, over `gloo-net` (the browser's `fetch`).
//!
//! Every call has a deadline: a server that accepts the connection but never answers must show up
//! on the page as unreachable, not as a page that silently stops updating.

use std::time::Duration;

use gloo_net::http::{Request, RequestBuilder, Response};
use models::{
    ApiError, Deactivated, ErrorCode, History, InstallAnswer, License, LicenseAnswer,
    LicenseHistory, LicensedUsersAnswer, LoginAnswer, LoginRequest, RemoteLicenses, SessionClosed,
    SessionPage, SessionQuery, StatusData, UsageReport, VendorService, headers,
};
use serde::{Serialize, de::DeserializeOwned};
use thiserror::Error;

/// How long a request may take before it is aborted and reported as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong, worded for the person looking at the page.
#[derive(Debug, Clone, Error)]
pub enum Error {
    /// No HTTP answer at all: server down, network gone, or the request timed out.
    #[error("The license server cannot be reached ({0})")]
    Unreachable(String),
    /// The server answered with its JSON error body.
    #[error("The license server refused the request (HTTP {status}): {error}")]
    Api { status: u16, error: ApiError },
    /// An answer that is not what this version of the app expects (e.g. a proxy's error page).
    #[error("Unexpected answer from the license server (HTTP {status}): {detail}")]
    Unexpected { status: u16, detail: String },
}

type Result<T> = std::result::Result<T, Error>;

/// Where an admin call finds its credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokens<'a> {
    /// The admin session token of `POST /server/auth`, for `X-Ak-Session-Id`.
    pub admin: Option<&'a str>,
    /// The vendor's licensing token, for `X-Lic-Session-Id`.
    pub vendor: Option<&'a str>,
}

/// Sends `request` with the deadline, as `Unreachable` when no answer comes.
async fn send(request: RequestBuilder, body: Option<String>) -> Result<Response> {
    let controller = web_sys::AbortController::new().ok();
    let request = request.abort_signal(controller.as_ref().map(|c| c.signal()).as_ref());
    // Dropping the timeout (when the answer came first) cancels it.
    let _deadline = controller.map(|controller| {
        gloo_timers::callback::Timeout::new(REQUEST_TIMEOUT.as_millis() as u32, move || {
            controller.abort()
        })
    });
    let request = match body {
        Some(body) => request.body(body),
        None => request.build(),
    }
    .map_err(|e| Error::Unexpected {
        status: 0,
        detail: e.to_string(),
    })?;
    request
        .send()
        .await
        .map_err(|e| Error::Unreachable(unreachable_reason(&e)))
}

fn with_tokens(mut request: RequestBuilder, tokens: Tokens<'_>) -> RequestBuilder {
    if let Some(token) = tokens.admin {
        request = request.header(headers::SESSION_TOKEN, token);
    }
    if let Some(token) = tokens.vendor {
        request = request.header(headers::LICENSING_TOKEN, token);
    }
    request.header("Accept", "application/json")
}

fn with_pool(request: RequestBuilder, pool: Option<&str>) -> RequestBuilder {
    match pool {
        Some(pool) => request.header(headers::POOL, pool),
        None => request,
    }
}

/// `GET /status/data.json?sessions=false`, optionally for a named cartridge pool (`X-Pool-ID`):
/// the page pages the sessions itself.
pub async fn status_data(pool: Option<&str>) -> Result<StatusData> {
    let request = with_pool(Request::get("/status/data.json?sessions=false"), pool);
    into_json(send(with_tokens(request, Tokens::default()), None).await?).await
}

/// `GET /status/sessions.json`: one page of sessions.
pub async fn session_page(pool: Option<&str>, query: &SessionQuery) -> Result<SessionPage> {
    let query = query.to_query_string(|v| js_sys::encode_uri_component(v).into());
    let request = with_pool(
        Request::get(&format!("/status/sessions.json?{query}")),
        pool,
    );
    into_json(send(with_tokens(request, Tokens::default()), None).await?).await
}

/// `GET /status/history.json`: the cartridges' last hour.
pub async fn history(pool: Option<&str>) -> Result<History> {
    let request = with_pool(Request::get("/status/history.json"), pool);
    into_json(send(with_tokens(request, Tokens::default()), None).await?).await
}

async fn admin<T: DeserializeOwned>(
    request: RequestBuilder,
    tokens: Tokens<'_>,
    body: Option<String>,
) -> Result<T> {
    into_json(send(with_tokens(request, tokens), body).await?).await
}

fn json_body(value: &impl Serialize) -> Option<String> {
    serde_json::to_string(value).ok()
}

fn login_request(principal: &str, secret: &str) -> Option<String> {
    json_body(&LoginRequest {
        principal: principal.into(),
        secret: secret.into(),
        realm: None,
    })
}

/// `GET /server/manage/usage` with `query` (`?from=…&step=…`, or empty).
pub async fn usage(tokens: Tokens<'_>, query: &str) -> Result<UsageReport> {
    let path = format!("/server/manage/usage{query}");
    admin(Request::get(&path), tokens, None).await
}

/// `POST /server/auth`
pub async fn login(principal: &str, secret: &str) -> Result<LoginAnswer> {
    let request = Request::post("/server/auth").header("Content-Type", "application/json");
    admin(request, Tokens::default(), login_request(principal, secret)).await
}

/// `DELETE /server/auth`
pub async fn logout(tokens: Tokens<'_>) -> Result<serde_json::Value> {
    admin(Request::delete("/server/auth"), tokens, None).await
}

/// `GET /server/manage/licenses/active`
pub async fn active_license(tokens: Tokens<'_>) -> Result<LicenseAnswer> {
    admin(Request::get("/server/manage/licenses/active"), tokens, None).await
}

/// `GET /server/manage/licenses`
pub async fn licenses(tokens: Tokens<'_>) -> Result<Vec<License>> {
    admin(Request::get("/server/manage/licenses"), tokens, None).await
}

/// `GET /server/manage/licenses/history`
pub async fn license_history(tokens: Tokens<'_>) -> Result<LicenseHistory> {
    admin(
        Request::get("/server/manage/licenses/history"),
        tokens,
        None,
    )
    .await
}

/// `POST /server/manage/license/install` with the license file's text.
pub async fn install_license(tokens: Tokens<'_>, file: String) -> Result<InstallAnswer> {
    let request = Request::post("/server/manage/license/install")
        .header("Content-Type", "application/octet-stream");
    admin(request, tokens, Some(file)).await
}

/// `DELETE /server/manage/licenses/{key}`: remove an installed license.
pub async fn remove_license(tokens: Tokens<'_>, key: &str) -> Result<LicenseAnswer> {
    let path = format!(
        "/server/manage/licenses/{}",
        js_sys::encode_uri_component(key)
    );
    admin(Request::delete(&path), tokens, None).await
}

/// `GET /server/manage/license/create`: the offline activation request: the file name the server
/// suggests, and the text.
pub async fn activation_request(tokens: Tokens<'_>) -> Result<(String, String)> {
    let response = send(
        with_tokens(Request::get("/server/manage/license/create"), tokens),
        None,
    )
    .await?;
    let status = response.status();
    let name = response
        .headers()
        .get("content-disposition")
        .and_then(|d| {
            let (_, rest) = d.split_once("filename=\"")?;
            rest.split_once('"').map(|(name, _)| name.to_owned())
        })
        .unwrap_or_else(|| "activation-request.json".to_owned());
    let text = response.text().await.map_err(|e| Error::Unexpected {
        status,
        detail: e.to_string(),
    })?;
    if response.ok() {
        Ok((name, text))
    } else {
        // Not ok: `decode` turns the body into the typed error.
        decode::<serde_json::Value>(status, false, &text).and_then(|_| {
            Err(Error::Unexpected {
                status,
                detail: text.chars().take(200).collect(),
            })
        })
    }
}

/// `GET /server/manage/license/users`
pub async fn licensed_users(tokens: Tokens<'_>) -> Result<LicensedUsersAnswer> {
    admin(Request::get("/server/manage/license/users"), tokens, None).await
}

/// `DELETE /server/manage/license/users`
pub async fn clear_licensed_users(tokens: Tokens<'_>) -> Result<LicensedUsersAnswer> {
    admin(
        Request::delete("/server/manage/license/users"),
        tokens,
        None,
    )
    .await
}

/// `DELETE /server/manage/license/users/{realm}/{principal}`
pub async fn clear_licensed_user(
    tokens: Tokens<'_>,
    realm: &str,
    principal: &str,
) -> Result<LicensedUsersAnswer> {
    let path = format!(
        "/server/manage/license/users/{}/{}",
        js_sys::encode_uri_component(realm),
        js_sys::encode_uri_component(principal)
    );
    admin(Request::delete(&path), tokens, None).await
}

/// `DELETE /server/manage/sessions/{id}`: force-release a session.
pub async fn release_session(tokens: Tokens<'_>, session_id: u64) -> Result<SessionClosed> {
    let path = format!("/server/manage/sessions/{session_id}");
    admin(Request::delete(&path), tokens, None).await
}

/// `POST /server/manage/license/remote/auth`: log in to the vendor.
pub async fn vendor_login(
    tokens: Tokens<'_>,
    principal: &str,
    secret: &str,
) -> Result<LoginAnswer> {
    let request = Request::post("/server/manage/license/remote/auth")
        .header("Content-Type", "application/json");
    admin(request, tokens, login_request(principal, secret)).await
}

/// `GET /server/manage/license/remote`: whether a vendor service is configured.
pub async fn vendor_service(tokens: Tokens<'_>) -> Result<VendorService> {
    admin(Request::get("/server/manage/license/remote"), tokens, None).await
}

/// `DELETE /server/manage/license/remote/auth`
pub async fn vendor_logout(tokens: Tokens<'_>) -> Result<serde_json::Value> {
    admin(
        Request::delete("/server/manage/license/remote/auth"),
        tokens,
        None,
    )
    .await
}

/// `GET /server/manage/license/remote/licenses`
pub async fn vendor_licenses(tokens: Tokens<'_>) -> Result<RemoteLicenses> {
    admin(
        Request::get("/server/manage/license/remote/licenses"),
        tokens,
        None,
    )
    .await
}

/// `PUT /server/manage/license/remote/licenses/{key}`: activate and install.
pub async fn vendor_activate(tokens: Tokens<'_>, key: &str) -> Result<LicenseAnswer> {
    let path = format!(
        "/server/manage/license/remote/licenses/{}",
        js_sys::encode_uri_component(key)
    );
    admin(Request::put(&path), tokens, None).await
}

/// `DELETE /server/manage/license/remote/licenses/{key}/activations/{server_id}`: a transfer.
pub async fn vendor_deactivate(
    tokens: Tokens<'_>,
    key: &str,
    server_id: &str,
) -> Result<Deactivated> {
    let path = format!(
        "/server/manage/license/remote/licenses/{}/activations/{}",
        js_sys::encode_uri_component(key),
        js_sys::encode_uri_component(server_id)
    );
    admin(Request::delete(&path), tokens, None).await
}

impl Error {
    /// The server's error code, when it sent one this version knows.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { error, .. } => error.code(),
            _ => None,
        }
    }

    /// Whether the admin session is gone (expired, logged out elsewhere, user removed): the app
    /// then asks for a new login. A refused vendor login is also a 401, but not this.
    pub fn session_ended(&self) -> bool {
        matches!(self, Self::Api { status: 401, .. })
            && matches!(
                self.code(),
                Some(ErrorCode::Unauthenticated | ErrorCode::SessionExpired)
            )
    }

    /// The message for the person at the form: the server's own words when it gave some.
    pub fn message(&self) -> String {
        match self {
            Self::Api { error, .. } => format!("{} ({})", error.error.message, error.error.code),
            other => other.to_string(),
        }
    }
}

fn unreachable_reason(error: &gloo_net::Error) -> String {
    match error {
        gloo_net::Error::JsError(js) if js.name == "AbortError" => {
            format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
        }
        gloo_net::Error::JsError(js) => js.message.clone(),
        other => other.to_string(),
    }
}

async fn into_json<T: DeserializeOwned>(response: Response) -> Result<T> {
    let status = response.status();
    let text = response.text().await.map_err(|e| Error::Unexpected {
        status,
        detail: e.to_string(),
    })?;
    decode(status, response.ok(), &text)
}

/// Turns a status and body into the typed answer or the typed error. Separate from the fetch so it
/// can be tested off the browser.
pub fn decode<T: DeserializeOwned>(status: u16, ok: bool, body: &str) -> Result<T> {
    if ok {
        return serde_json::from_str(body).map_err(|e| Error::Unexpected {
            status,
            detail: e.to_string(),
        });
    }
    match serde_json::from_str::<ApiError>(body) {
        Ok(error) => Err(Error::Api { status, error }),
        Err(_) => Err(Error::Unexpected {
            status,
            detail: body.chars().take(200).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_becomes_a_typed_error() {
        let body =
            r#"{"error":{"code":"INVALID_POOL_ID","message":"pool names are at most 64 bytes"}}"#;
        match decode::<StatusData>(400, false, body) {
            Err(Error::Api { status, error }) => {
                assert_eq!(status, 400);
                assert_eq!(error.code(), Some(ErrorCode::InvalidPoolId));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    #[test]
    fn a_foreign_error_page_is_unexpected_not_a_crash() {
        let result = decode::<StatusData>(502, false, "<html>Bad Gateway</html>");
        assert!(
            matches!(result, Err(Error::Unexpected { status: 502, ref detail }) if detail.contains("Bad Gateway"))
        );
    }

    #[test]
    fn a_good_answer_decodes() {
        let data: StatusData =
            decode(200, true, r#"{"cartridges":[],"sessions":[],"servers":[]}"#).unwrap();
        assert!(data.servers.is_empty());
    }
}
