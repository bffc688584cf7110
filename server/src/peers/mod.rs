//! The failover network's member-to-member endpoints, on the license port: the Raft calls
//! (`POST /members/v1/raft/append | vote | snapshot`) that [`crate::failover::calls`] makes.
//!
//! Each call must be signed by a member of the network ([`crate::failover::envelope`]); anything
//! else is `401 MEMBER_REFUSED` before its body is even parsed. The answer, openraft's result as
//! JSON, is signed by this member together with the call's signature, so the caller knows it
//! comes from the member it called and answers this very call.

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use models::ErrorCode;
use openraft::error::RaftError;
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    failover::{
        calls::{APPEND, Peers, SNAPSHOT, VOTE},
        envelope::{self, MEMBER, SIGNATURE, TIME},
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
    let refused = |why: String| {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::MemberRefused,
            format!("refused: {why}"),
        )
    };
    let call = envelope::read_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .map_err(|e| refused(e.to_string()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    envelope::verify_call(&state.peers.keys, path, &call, body, now)
        .map_err(|e| refused(e.to_string()))?;
    let request: Q = serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request(ErrorCode::InvalidJson, format!("not a Raft call: {e}"))
    })?;
    let result = work(request).await;
    let bytes = serde_json::to_vec(&result).map_err(anyhow::Error::from)?;
    let signed = envelope::sign_answer(&state.peers.key, state.peers.me, path, &call, &bytes);
    let value = |text: String| HeaderValue::from_str(&text).map_err(anyhow::Error::from);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static(MEMBER),
                value(signed.member.to_string())?,
            ),
            (
                header::HeaderName::from_static(TIME),
                value(signed.time.to_string())?,
            ),
            (
                header::HeaderName::from_static(SIGNATURE),
                value(signed.signature)?,
            ),
        ],
        bytes,
    )
        .into_response())
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

#[cfg(test)]
mod tests;
