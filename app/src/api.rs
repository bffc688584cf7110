//! Typed client of the server's REST API, over `gloo-net` (the browser's `fetch`).
//!
//! Every call has a deadline: a server that accepts the connection but never answers must show up
//! on the page as unreachable, not as a page that silently stops updating.

use std::time::Duration;

use gloo_net::http::{Request, Response};
use models::{ApiError, StatusData};
use serde::de::DeserializeOwned;
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

/// `GET /status/data.json`, optionally for a named cartridge pool (`X-Pool-ID`).
pub async fn status_data(pool: Option<&str>) -> Result<StatusData> {
    let mut request = Request::get("/status/data.json").header("Accept", "application/json");
    if let Some(pool) = pool {
        request = request.header("X-Pool-ID", pool);
    }
    let controller = web_sys::AbortController::new().ok();
    let request = request.abort_signal(controller.as_ref().map(|c| c.signal()).as_ref());
    // Dropping the timeout (when the answer came first) cancels it.
    let _deadline = controller.map(|controller| {
        gloo_timers::callback::Timeout::new(REQUEST_TIMEOUT.as_millis() as u32, move || {
            controller.abort()
        })
    });
    let response = request
        .send()
        .await
        .map_err(|e| Error::Unreachable(unreachable_reason(&e)))?;
    into_json(response).await
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
                assert_eq!(error.error.code, "INVALID_POOL_ID");
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
