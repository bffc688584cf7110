//! The members' own endpoints besides Raft's: `hello` (this member's record for the others'
//! status pages), `heartbeats` (the sessions another member heard from, for the coordinator),
//! `outbox` (another member's ledger entries of other tables' changes, recorded by the
//! coordinator) and `forward` (see [`super::forward`]). Every call is signed and checked as
//! Raft's are.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::post,
};
use models::ErrorCode;

use super::{
    forward,
    raft::{self, BODY_LIMIT, PeerState},
    signing::{check, signed},
};
use crate::{
    app::AppState,
    failover::{
        config::NetworkConfig,
        membership::{ChangeError, MembersChange},
        network::{FORWARD, HEARTBEATS, HELLO, MEMBERS, Network, OUTBOX},
        relay::{HeardSessions, OutboxEntries},
    },
    http::AppError,
};

/// What the member endpoints need: the app, its network, and the license port's protocol routes
/// (what a forwarded request is answered by).
#[derive(Clone)]
pub struct MemberState {
    pub app: AppState,
    pub network: Arc<Network>,
    pub protocol: Router,
}

impl std::fmt::Debug for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberState")
            .field("me", &self.network.me)
            .finish_non_exhaustive()
    }
}

/// Every member-to-member endpoint of `network`'s member, Raft's included; `protocol`: the
/// license port's protocol routes.
pub fn routes(app: AppState, network: Arc<Network>, protocol: Router) -> Router {
    let raft = raft::routes(PeerState {
        raft: network.raft.clone(),
        peers: network.peers.clone(),
    });
    let state = MemberState {
        app,
        network,
        protocol,
    };
    Router::new()
        .route(HELLO, post(hello))
        .route(HEARTBEATS, post(heartbeats))
        .route(OUTBOX, post(outbox))
        .route(FORWARD, post(forward::answer))
        .route(MEMBERS, post(members))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
        .merge(raft)
}

fn not_coordinator() -> AppError {
    AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::NoQuorum,
        "this member is not the coordinator",
    )
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request(ErrorCode::InvalidJson, format!("not a member call: {e}"))
    })
}

/// This member's record, as the status page shows it.
async fn hello(
    State(state): State<MemberState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let call = check(&state.network.peers, HELLO, &headers, &body)?;
    let mut record = state.app.identity.record();
    record.coordinator = None;
    let bytes = serde_json::to_vec(&record).map_err(anyhow::Error::from)?;
    signed(&state.network.peers, HELLO, &call, bytes)
}

/// The sessions another member heard from are alive (on the coordinator).
async fn heartbeats(
    State(state): State<MemberState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let call = check(&state.network.peers, HEARTBEATS, &headers, &body)?;
    let heard: HeardSessions = json(&body)?;
    if !state.app.engine.decides() {
        return Err(not_coordinator());
    }
    state.app.engine.heard(&heard.sessions);
    signed(&state.network.peers, HEARTBEATS, &call, b"{}".to_vec())
}

/// Changes the network's members as another member's administrator asked (on the coordinator).
async fn members(
    State(state): State<MemberState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let call = check(&state.network.peers, MEMBERS, &headers, &body)?;
    let change: MembersChange = json(&body)?;
    let list = NetworkConfig::from_tokens(&change.members).map_err(ChangeError::from)?;
    state.app.change_members(&list, &change.by).await?;
    signed(&state.network.peers, MEMBERS, &call, b"{}".to_vec())
}

/// Records another member's outbox entries, durably (on the coordinator).
async fn outbox(
    State(state): State<MemberState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let call = check(&state.network.peers, OUTBOX, &headers, &body)?;
    let entries: OutboxEntries = json(&body)?;
    if !state.app.engine.decides() {
        return Err(not_coordinator());
    }
    state.network.record_outbox(&entries).await.map_err(|e| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NoQuorum,
            format!("the entries were not recorded: {e:#}"),
        )
    })?;
    signed(&state.network.peers, OUTBOX, &call, b"{}".to_vec())
}
