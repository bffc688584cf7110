//! Every member accepts clients; the coordinator decides. A request that changes something
//! (opening or closing a session, a license request, a release) on a member that does not decide
//! goes to the coordinator as it came ([`to_coordinator`], a layer on the license protocol's
//! routes), with the client's address; the coordinator answers it with its own protocol routes
//! ([`answer`]) and the member passes the answer back unchanged. Heartbeats stay on the member
//! (see `failover::relay`).
//!
//! While there is no coordinator to pass a request to (an election, a member cut off), the
//! member waits for one up to [`WAIT_FOR_COORDINATOR`], then answers `503 NO_QUORUM`; the client
//! asks again (its request id makes a retried license request harmless).

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use models::ErrorCode;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use super::{
    members::MemberState,
    signing::{check, signed},
};
use crate::{
    app::AppState,
    engine::Unavailable,
    failover::{calls::CallFailure, network::FORWARD},
    http::{AppError, extract::CameTo},
};

/// How long a member waits for a coordinator to pass a request to.
pub const WAIT_FOR_COORDINATOR: Duration = Duration::from_secs(3);
/// A request of the license protocol is small; more is refused before it is passed on.
const MAX_REQUEST: usize = 64 * 1024;
/// An answer of the license protocol is small too.
const MAX_ANSWER: usize = 1024 * 1024;
/// How long a passed-on request may take, beyond the license request's own wait.
const CALL_MARGIN: Duration = Duration::from_secs(15);

/// A client's request, as a member passes it to the coordinator.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forwarded {
    pub method: String,
    pub path: String,
    /// The session token the client sent (`Authorization: Bearer`).
    pub token: Option<String>,
    /// The client's address, as the member saw it.
    pub client_ip: IpAddr,
    /// The JSON body, as sent.
    pub body: String,
}

/// The coordinator's answer to a forwarded request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relayed {
    pub status: u16,
    pub body: String,
}

/// Marks a request the coordinator answers for another member: never passed on again.
#[derive(Debug, Clone, Copy)]
struct FromMember;

/// The layer on the protocol routes of a member: see the module's documentation.
pub async fn to_coordinator(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let stays = request.method() == Method::GET
        || request.uri().path().ends_with("/heartbeat")
        || request.extensions().get::<FromMember>().is_some();
    let Some(network) = app.network.clone().filter(|_| !stays) else {
        return next.run(request).await;
    };
    if app.engine.decides() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST).await else {
        return AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("a license protocol request is at most {MAX_REQUEST} bytes"),
        )
        .into_response();
    };
    let deadline = Instant::now() + WAIT_FOR_COORDINATOR;
    let mut metrics = network.raft.metrics();
    loop {
        if app.engine.decides() {
            return next.run(Request::from_parts(parts, Body::from(body))).await;
        }
        if let Some(coordinator) = network.coordinator().filter(|c| *c != network.me) {
            match pass_on(&network, coordinator, &parts, &body).await {
                Ok(relayed) => return relayed,
                Err(e) => tracing::debug!(error = %e, "could not pass a request on yet"),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), metrics.changed()).await;
    }
    let reason = match app.engine.unavailable() {
        Some(Unavailable::NoQuorum(reason) | Unavailable::Ledger(reason)) => reason,
        None => "the coordinator did not answer; ask again".to_owned(),
    };
    AppError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NoQuorum, reason).into_response()
}

/// Sends the request to `coordinator`; its answer as this member's. An answer that says the
/// coordinator does not decide (it is catching up, or no longer coordinates) is a failure, to be
/// tried again.
async fn pass_on(
    network: &crate::failover::network::Network,
    coordinator: u64,
    parts: &Parts,
    body: &Bytes,
) -> Result<Response, CallFailure> {
    let client_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip().to_canonical());
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let text = String::from_utf8_lossy(body).into_owned();
    // A license request waits up to its `wait_s` for a seat, on the coordinator.
    let wait = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("wait_s").and_then(serde_json::Value::as_u64))
        .map_or(Duration::from_secs(60), Duration::from_secs);
    let forwarded = Forwarded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        token,
        client_ip,
        body: text,
    };
    let call = network.call(
        coordinator,
        FORWARD,
        serde_json::to_vec(&forwarded).unwrap_or_default(),
        wait.min(Duration::from_secs(3600)) + CALL_MARGIN,
    );
    // A coordinator cut off from this member does not answer, and a kept connection to it does
    // not fail either: once another coordinator is known, the request goes there instead (a
    // retried request is harmless, see the module's documentation).
    let bytes = tokio::select! {
        answer = call => answer?,
        () = replaced(network, coordinator) => {
            return Err(CallFailure::Unreachable {
                member: coordinator,
                why: "another member became the coordinator".to_owned(),
            });
        }
    };
    let relayed: Relayed =
        serde_json::from_slice(&bytes).map_err(|e| CallFailure::Unbelievable {
            member: coordinator,
            why: e.to_string(),
        })?;
    if relayed.status == StatusCode::SERVICE_UNAVAILABLE.as_u16()
        && relayed.body.contains(ErrorCode::NoQuorum.as_str())
    {
        return Err(CallFailure::Refused {
            member: coordinator,
            status: relayed.status,
            body: relayed.body,
        });
    }
    let status = StatusCode::from_u16(relayed.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let json = !relayed.body.is_empty();
    let mut response = (status, relayed.body).into_response();
    if json {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(response)
}

/// Resolves once this member knows of another coordinator than `coordinator` (or none).
async fn replaced(network: &crate::failover::network::Network, coordinator: u64) {
    let mut metrics = network.raft.metrics();
    loop {
        if metrics.borrow().current_leader != Some(coordinator) {
            return;
        }
        if metrics.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// The coordinator answers a request another member passed on, with its own protocol routes.
pub async fn answer(
    State(state): State<MemberState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let call = check(&state.network.peers, FORWARD, &headers, &body)?;
    let forwarded: Forwarded = serde_json::from_slice(&body).map_err(|e| {
        AppError::bad_request(
            ErrorCode::InvalidJson,
            format!("not a forwarded request: {e}"),
        )
    })?;
    let method = match forwarded.method.as_str() {
        "POST" => Method::POST,
        "DELETE" => Method::DELETE,
        other => {
            return Err(AppError::bad_request(
                ErrorCode::InvalidJson,
                format!("{other} requests are not passed on"),
            ));
        }
    };
    if !forwarded.path.starts_with("/v1/sessions") {
        return Err(AppError::bad_request(
            ErrorCode::InvalidJson,
            "only license protocol requests are passed on",
        ));
    }
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(&forwarded.path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = &forwarded.token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request
        .body(Body::from(forwarded.body))
        .map_err(anyhow::Error::from)?;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(forwarded.client_ip, 0)));
    request.extensions_mut().insert(FromMember);
    if let Some(member) = state.network.member(call.member) {
        request.extensions_mut().insert(CameTo(member.server_id));
    }
    let response = state
        .protocol
        .clone()
        .oneshot(request)
        .await
        .map_err(anyhow::Error::from)?;
    let status = response.status().as_u16();
    let answer = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
        .await
        .map_err(anyhow::Error::from)?;
    let relayed = Relayed {
        status,
        body: String::from_utf8_lossy(&answer).into_owned(),
    };
    let bytes = serde_json::to_vec(&relayed).map_err(anyhow::Error::from)?;
    signed(&state.network.peers, FORWARD, &call, bytes)
}
