//! The Raft endpoints of a member (`POST /members/v1/raft/append | vote | snapshot`), which
//! [`crate::failover::calls`] calls: openraft's result, as JSON, signed.

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::HeaderMap,
    response::Response,
    routing::post,
};
use models::ErrorCode;
use openraft::error::RaftError;
use serde::{Serialize, de::DeserializeOwned};

use super::signing::{check, signed};
use crate::{
    failover::{
        calls::{APPEND, Peers, SNAPSHOT, VOTE},
        types::{NodeId, TypeConfig},
    },
    http::AppError,
};

/// A Raft call's body at most: an append of many entries, or a snapshot chunk.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// What the endpoints need: this member's Raft, its key and the members' keys.
#[derive(Clone)]
pub struct PeerState {
    pub raft: openraft::Raft<TypeConfig>,
    pub peers: Arc<Peers>,
}

impl std::fmt::Debug for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerState")
            .field("me", &self.peers.me)
            .finish_non_exhaustive()
    }
}

/// The Raft endpoints of a member.
pub fn routes(state: PeerState) -> Router {
    Router::new()
        .route(APPEND, post(append))
        .route(VOTE, post(vote))
        .route(SNAPSHOT, post(snapshot))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Checks the call, runs `work` on its body, and signs the answer.
async fn answer<Q, A, E, F>(
    state: &PeerState,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    work: impl FnOnce(Q) -> F,
) -> Result<Response, AppError>
where
    Q: DeserializeOwned,
    A: Serialize,
    E: std::error::Error + Serialize,
    F: Future<Output = Result<A, RaftError<NodeId, E>>>,
{
    let call = check(&state.peers, path, headers, body)?;
    let request: Q = serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request(ErrorCode::InvalidJson, format!("not a Raft call: {e}"))
    })?;
    let result = work(request).await;
    let bytes = serde_json::to_vec(&result).map_err(anyhow::Error::from)?;
    signed(&state.peers, path, &call, bytes)
}

async fn append(
    State(state): State<PeerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let raft = state.raft.clone();
    answer(&state, APPEND, &headers, &body, |rpc| async move {
        raft.append_entries(rpc).await
    })
    .await
}

async fn vote(
    State(state): State<PeerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let raft = state.raft.clone();
    answer(&state, VOTE, &headers, &body, |rpc| async move {
        raft.vote(rpc).await
    })
    .await
}

async fn snapshot(
    State(state): State<PeerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let raft = state.raft.clone();
    answer(&state, SNAPSHOT, &headers, &body, |rpc| async move {
        raft.install_snapshot(rpc).await
    })
    .await
}
