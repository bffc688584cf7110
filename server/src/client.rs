//! A typed client of the license protocol, used by `license-server client run` and `bench`, and
//! a model for vendors who embed the protocol in their own programs.
//!
//! Opening a session tries each configured server in turn and stays with the first that answers,
//! so a client configured with every member of a failover network keeps working when one is down.
//! Every call on an open session goes to the server that answered last; when that one cannot be
//! reached, or answers that it cannot decide now (`503`), the same call goes to the others in
//! turn, and the first that knows the session takes over: every member of a failover network
//! holds every session, so the session, its token and its licenses carry on. A server that does
//! not know the session (another network, or none) is passed over.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use models::{
    ApiError, ErrorCode, Granted, OpenSession, Released, RequestLicense, SessionClosed,
    SessionOpened,
};
use reqwest::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use thiserror::Error;

use crate::sys::hex;

/// How long to wait for a server to accept a connection before trying the next.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest an ordinary call may take (a member of a failover network holds a request up to
/// 3 s while it waits for a coordinator); a license request adds its own `wait_s`. A server that
/// has not answered by then is passed over for the next.
const CALL_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("no license server answered (tried {tried}): {last}")]
    Unreachable { tried: String, last: String },
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("the license server sent an answer this client does not understand: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The server's error code, when it sent one this version knows.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => ErrorCode::parse(code),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LicenseClient {
    http: reqwest::Client,
    servers: Vec<String>,
    /// The server that answered last (shared by clones: a session moves for all of them).
    current: Arc<AtomicUsize>,
}

/// How long an unused connection to a server is kept for the next call.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

impl LicenseClient {
    /// `servers`: `HOST:PORT` of license ports (`https://HOST:PORT` for one with TLS), in order
    /// of preference.
    pub fn new(servers: Vec<String>) -> Result<Self, ClientError> {
        Self::with_ca(servers, None)
    }

    /// [`LicenseClient::new`], also trusting the certificates of `ca` (PEM: a private CA) for
    /// servers with TLS.
    pub fn with_ca(servers: Vec<String>, ca: Option<&[u8]>) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            // Below the server's default idle timeout (20 s), so a kept connection is dropped
            // here before the server closes it under a request being sent.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT);
        if let Some(pem) = ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Unexpected(format!("the CA file: {e}")))?;
            if certs.is_empty() {
                return Err(ClientError::Unexpected(
                    "the CA file holds no certificate (expected PEM)".to_owned(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        Ok(Self {
            http,
            servers,
            current: Arc::default(),
        })
    }

    /// Which server (by its place in the list) answered last.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::SeqCst)
    }

    pub fn server(&self) -> &str {
        self.servers.get(self.current()).map_or("", String::as_str)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        server: &str,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        timeout: Duration,
        session: Option<&SessionOpened>,
    ) -> Result<T, CallError> {
        let mut request = self
            .http
            .request(method, url(server, path))
            .timeout(timeout);
        if let Some(session) = session {
            request = request.bearer_auth(&session.session_token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        // A request that could not be built is this client's fault; any other failure to send
        // or to read the answer (refused, reset, closed mid-answer by a server that died, too
        // slow) says nothing about the call: another server may answer it, and every call on a
        // session is safe to repeat (a license request carries its request id).
        let response = request.send().await.map_err(|e| {
            if e.is_builder() {
                CallError::Failed(ClientError::Unexpected(describe(&e)))
            } else {
                CallError::Unreachable(describe(&e))
            }
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CallError::Unreachable(describe(&e)))?;
        if status.is_success() {
            let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            serde_json::from_slice(body)
                .map_err(|e| CallError::Failed(ClientError::Unexpected(e.to_string())))
        } else {
            Err(CallError::Failed(
                match serde_json::from_slice::<ApiError>(&bytes) {
                    Ok(api) => ClientError::Api {
                        status,
                        code: api.error.code,
                        message: api.error.message,
                    },
                    Err(_) => ClientError::Unexpected(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    )),
                },
            ))
        }
    }

    /// The server that answered last; if it cannot be reached or cannot decide now, the others
    /// in turn (see the module's documentation). The first answer's error if none takes over.
    async fn call_current<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        timeout: Duration,
        session: Option<&SessionOpened>,
    ) -> Result<T, ClientError> {
        let first = self.current();
        let count = self.servers.len().max(1);
        let mut error = None;
        for index in (0..count).map(|i| (first + i) % count) {
            let Some(server) = self.servers.get(index) else {
                break;
            };
            let failed = match self
                .call(server, method.clone(), path, body, timeout, session)
                .await
            {
                Ok(answer) => {
                    self.current.store(index, Ordering::SeqCst);
                    return Ok(answer);
                }
                Err(CallError::Unreachable(last)) => ClientError::Unreachable {
                    tried: server.clone(),
                    last,
                },
                // Another server that does not know the session: not one of the network.
                Err(CallError::Failed(e)) if index != first && not_here(&e) => e,
                Err(CallError::Failed(e)) if !cannot_decide(&e) => {
                    self.current.store(index, Ordering::SeqCst);
                    return Err(e);
                }
                Err(CallError::Failed(e)) => e,
            };
            error.get_or_insert(failed);
        }
        Err(error.unwrap_or_else(|| ClientError::Unreachable {
            tried: String::new(),
            last: "no server given".to_owned(),
        }))
    }

    /// Opens a session on the first server that answers.
    pub async fn open_session(
        &mut self,
        request: &OpenSession,
    ) -> Result<SessionOpened, ClientError> {
        self.open_session_from(request, 0).await
    }

    /// Opens a session on the first server that answers, trying them from `first` on and then
    /// the ones before it: after losing a session, the others first.
    pub async fn open_session_from(
        &mut self,
        request: &OpenSession,
        first: usize,
    ) -> Result<SessionOpened, ClientError> {
        let mut last = String::from("no server given");
        // A server that answered it cannot decide now says more than one that did not answer.
        let mut undecided = None;
        let count = self.servers.len();
        let order = (0..count).map(|i| (first + i) % count.max(1));
        for (index, server) in order.map(|i| (i, &self.servers[i])) {
            match self
                .call(
                    server,
                    Method::POST,
                    "/v1/sessions",
                    Some(request),
                    CALL_TIMEOUT,
                    None,
                )
                .await
            {
                Ok(opened) => {
                    self.current.store(index, Ordering::SeqCst);
                    return Ok(opened);
                }
                Err(CallError::Unreachable(why)) => last = format!("{server}: {why}"),
                Err(CallError::Failed(e)) if cannot_decide(&e) => {
                    undecided.get_or_insert(e);
                }
                Err(CallError::Failed(e)) => return Err(e),
            }
        }
        Err(undecided.unwrap_or_else(|| ClientError::Unreachable {
            tried: self.servers.join(", "),
            last,
        }))
    }

    /// Calls on an open `session` carry its token.
    pub async fn request_license(
        &self,
        session: &SessionOpened,
        request: &RequestLicense,
    ) -> Result<Granted, ClientError> {
        let wait = Duration::from_secs(request.wait_s.unwrap_or(60));
        self.call_current(
            Method::POST,
            &format!("/v1/sessions/{}/licenses", session.session_id),
            Some(request),
            CALL_TIMEOUT + wait,
            Some(session),
        )
        .await
    }

    pub async fn release(
        &self,
        session: &SessionOpened,
        license_id: u64,
    ) -> Result<Released, ClientError> {
        let path = format!("/v1/sessions/{}/licenses/{license_id}", session.session_id);
        self.call_bodyless(Method::DELETE, &path, Some(session))
            .await
    }

    pub async fn heartbeat(&self, session: &SessionOpened) -> Result<(), ClientError> {
        let path = format!("/v1/sessions/{}/heartbeat", session.session_id);
        self.call_bodyless::<serde_json::Value>(Method::POST, &path, Some(session))
            .await
            .map(drop)
    }

    pub async fn close(&self, session: &SessionOpened) -> Result<SessionClosed, ClientError> {
        let path = format!("/v1/sessions/{}", session.session_id);
        self.call_bodyless(Method::DELETE, &path, Some(session))
            .await
    }

    /// `GET /health`: the cheapest request a license port answers (the benchmark's baseline).
    pub async fn health(&self) -> Result<(), ClientError> {
        self.call_bodyless::<serde_json::Value>(Method::GET, "/health", None)
            .await
            .map(drop)
    }

    /// An ordinary call without a request body, to the current server.
    async fn call_bodyless<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        session: Option<&SessionOpened>,
    ) -> Result<T, ClientError> {
        self.call_current(method, path, None::<&()>, CALL_TIMEOUT, session)
            .await
    }
}

/// An answer that says this server cannot decide right now (no quorum, the ledger cannot be
/// written): another may.
fn cannot_decide(error: &ClientError) -> bool {
    matches!(error, ClientError::Api { status, .. } if *status == StatusCode::SERVICE_UNAVAILABLE)
}

/// An answer that says this server does not know the session.
fn not_here(error: &ClientError) -> bool {
    matches!(
        error.code(),
        Some(ErrorCode::UnknownSession | ErrorCode::SessionTokenWrong)
    )
}

/// An error with its causes ("error sending request" alone does not say "connection reset").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

enum CallError {
    /// Not connected or no answer in time: another server may do.
    Unreachable(String),
    Failed(ClientError),
}

/// A request id from the OS CSPRNG: unique per request, so a retry can reuse it.
/// The address of `path` on `server`: `HOST:PORT` is plain HTTP; `http://` and `https://`
/// addresses are taken as they are.
pub fn url(server: &str, path: &str) -> String {
    if server.starts_with("http://") || server.starts_with("https://") {
        format!("{}{path}", server.trim_end_matches('/'))
    } else {
        format!("http://{server}{path}")
    }
}

pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Uniqueness within the session is all that matters; time is unique enough here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("t{nanos:x}");
    }
    hex::lower(&bytes)
}
