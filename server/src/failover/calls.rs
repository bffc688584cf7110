//! The calls a member makes to the others: openraft's `RaftNetwork` over HTTP on each member's
//! license port (`POST /members/v1/raft/…`), every call and answer authenticated
//! ([`super::envelope`]).
//! A member that cannot be reached is *unreachable* to openraft, which retries with its own
//! backoff; an answer whose signature does not check out is a network error, never believed.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use openraft::{
    RaftNetwork, RaftNetworkFactory,
    error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable},
    network::RPCOption,
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
        InstallSnapshotResponse, VoteRequest, VoteResponse,
    },
};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    envelope::{self, Keys, MEMBER, SIGNATURE, Signed, TIME, Trust},
    types::{Member, NodeId, TypeConfig},
};

pub const APPEND: &str = "/members/v1/raft/append";
pub const VOTE: &str = "/members/v1/raft/vote";
pub const SNAPSHOT: &str = "/members/v1/raft/snapshot";

/// Who this member is, and whom it trusts: what both its calls and its answers need.
#[derive(Debug)]
pub struct Peers {
    pub me: NodeId,
    key: SigningKey,
    /// The pair keys with the members: the list's, then the current membership's (see
    /// `membership`).
    trust: parking_lot::RwLock<Arc<Trust>>,
    pub http: reqwest::Client,
}

impl Peers {
    pub fn new(me: NodeId, key: SigningKey, keys: &Keys, http: reqwest::Client) -> Self {
        let trust = Arc::new(Trust::new(me, &key, keys));
        Self {
            me,
            key,
            trust: parking_lot::RwLock::new(trust),
            http,
        }
    }

    /// What calls and answers are authenticated with now.
    pub fn trust(&self) -> Arc<Trust> {
        Arc::clone(&self.trust.read())
    }

    /// Trusts the members of `keys` from now on (the members changed).
    pub fn set_keys(&self, keys: &Keys) {
        *self.trust.write() = Arc::new(Trust::new(self.me, &self.key, keys));
    }
}

/// openraft's network factory: a connection per target member.
#[derive(Debug, Clone)]
pub struct PeerNetwork(pub Arc<Peers>);

#[derive(Debug)]
pub struct PeerCall {
    peers: Arc<Peers>,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerCall;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerCall {
        PeerCall {
            peers: Arc::clone(&self.0),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// Why a call failed, as openraft takes it.
type CallError<E> = RPCError<NodeId, Member, RaftError<NodeId, E>>;

fn network<E: std::error::Error>(why: impl std::fmt::Display) -> CallError<E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(why.to_string())))
}

/// Why a call to another member got no answer to believe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    /// Not connected, or no answer in time: the member may be down.
    #[error("member {member} could not be reached: {why}")]
    Unreachable { member: NodeId, why: String },
    /// It answered with an error status (its body, shortened).
    #[error("member {member} answered HTTP {status}: {body}")]
    Refused {
        member: NodeId,
        status: u16,
        body: String,
    },
    /// Its answer was not signed by it, or not for this call.
    #[error("member {member}'s answer is not to be believed: {why}")]
    Unbelievable { member: NodeId, why: String },
}

impl Peers {
    /// Calls `path` of member `target` at `addr` with `body`, authenticated as this member; the
    /// answer's body once it checks out (from `target`, for this very call).
    pub async fn call(
        &self,
        target: NodeId,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<bytes::Bytes, CallFailure> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let trust = self.trust();
        let signed =
            trust
                .sign_call(target, path, now, &body)
                .map_err(|e| CallFailure::Unbelievable {
                    member: target,
                    why: e.to_string(),
                })?;
        let unreachable = |e: reqwest::Error| CallFailure::Unreachable {
            member: target,
            why: e.to_string(),
        };
        let response = self
            .http
            .post(format!("http://{addr}{path}"))
            .header(MEMBER, signed.member.to_string())
            .header(TIME, signed.time.to_string())
            .header(SIGNATURE, &signed.signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(CallFailure::Refused {
                member: target,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            });
        }
        let unbelievable = |why: String| CallFailure::Unbelievable {
            member: target,
            why,
        };
        let answer: Signed =
            envelope::read_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
                .map_err(|e| unbelievable(e.to_string()))?;
        trust
            .verify_answer(target, path, &signed, &answer, &bytes)
            .map_err(|e| unbelievable(e.to_string()))?;
        Ok(bytes)
    }
}

impl PeerCall {
    async fn call<Q, A, E>(
        &self,
        path: &str,
        request: &Q,
        option: &RPCOption,
    ) -> Result<A, CallError<E>>
    where
        Q: Serialize,
        A: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(request).map_err(network)?;
        let bytes = self
            .peers
            .call(self.target, &self.addr, path, body, option.hard_ttl())
            .await
            .map_err(|e| match e {
                CallFailure::Unreachable { .. } => {
                    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e.to_string())))
                }
                other => network(other),
            })?;
        match serde_json::from_slice::<Result<A, RaftError<NodeId, E>>>(&bytes).map_err(network)? {
            Ok(answer) => Ok(answer),
            Err(e) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerCall {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, CallError<openraft::error::Infallible>> {
        self.call(APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, CallError<InstallSnapshotError>> {
        self.call(SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, CallError<openraft::error::Infallible>> {
        self.call(VOTE, &rpc, &option).await
    }

    /// Between calls to a member that could not be reached: soon at first, then every 200 ms.
    /// openraft's 500 ms left a member that restarted without the coordinator's heartbeats so
    /// long that it started an election of its own (which it cannot win, being behind, but
    /// which unseats the coordinator).
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(
            [20, 50, 100]
                .into_iter()
                .chain(std::iter::repeat(200))
                .map(std::time::Duration::from_millis),
        )
    }
}
