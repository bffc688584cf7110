//! Helpers shared by the integration tests.

use std::net::IpAddr;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode},
};
use http_body_util::BodyExt;
use server::{App, AppConfig, AppState, DataDir, EngineConfig, TrustedKeys};
use tempfile::TempDir;
use tower::ServiceExt;

/// The app over a fresh data directory, built as `serve` builds it (without listening).
pub struct TestApp {
    pub state: AppState,
    _dir: TempDir,
}

pub const LICENSE_PORT: u16 = 1400;

pub async fn app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (state, _ledger) = App::open(
        &DataDir::open(dir.path()).unwrap(),
        AppConfig {
            trusted: TrustedKeys::default(),
            engine: EngineConfig::default(),
            serial_number: "200000510".into(),
            bind: IpAddr::from([0, 0, 0, 0]),
            license_port: LICENSE_PORT,
            admin_idle_timeout: std::time::Duration::from_secs(1800),
            vendor_url: None,
            vendor_ca: None,
        },
    )
    .await
    .unwrap();
    TestApp { state, _dir: dir }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

pub async fn call(router: &Router, method: Method, uri: &str, headers: &[(&str, &str)]) -> Answer {
    call_with_body(router, method, uri, headers, "").await
}

pub async fn call_with_body(
    router: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(router: &Router, uri: &str) -> Answer {
    call(router, Method::GET, uri, &[]).await
}

/// Asserts the error shape of the API: `{"error": {"code", "message"}}` with the given code.
pub fn assert_api_error(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert!(
        answer
            .header("content-type")
            .starts_with("application/json")
    );
    let body = answer.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.is_empty());
}
