//! Accepting connections: what a port holds at most, how long a connection may dawdle, and what
//! happens when the machine runs out of descriptors.
//!
//! `axum::serve` has none of these knobs, so each port runs this loop instead (HTTP/1.1 only:
//! the protocol's clients, reqwest and browsers on plain HTTP all speak it, and one protocol is
//! one less parser to defend):
//!
//! - **Header-read timeout.** hyper closes a connection that has not sent a complete request
//!   header within [`ConnectionLimits::idle_timeout`], counted from the accept and again after
//!   each answer. That one timer stops slowloris (headers sent a byte at a time) and closes idle
//!   keep-alive connections; a request in progress (a license request waiting for a seat) is not
//!   idle and is never cut.
//! - **Caps.** At most [`ConnectionLimits::max_total`] connections per port and
//!   [`ConnectionLimits::max_per_address`] from one client address. One more gets a short
//!   `503 TOO_MANY_CONNECTIONS` (`429` for one address over its share) with `Retry-After` and a
//!   JSON body, written without waiting, and is closed: the connections already held keep being
//!   served. Each port has its own budget, so a flood of the license port cannot lock an
//!   administrator out of the API port.
//! - **Out of descriptors anyway** (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): the loop backs
//!   off (10 ms doubling to 1 s, one WARN per episode) instead of spinning on a failing
//!   `accept`, and the connections already open are untouched.
//!
//! Shutdown: on cancellation the listener closes, every connection is asked to finish its
//! request in flight and close (hyper's graceful shutdown), and the loop returns once they have.

use std::{
    collections::HashMap,
    convert::Infallible,
    io,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
};
use models::{ApiError, ErrorCode};
use parking_lot::Mutex;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{parse_errors::WithJsonErrors, tls::Tls};

/// What one port accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once on the port.
    pub max_total: usize,
    /// Connections open at once from one client address (a NAT gateway in front of a build farm
    /// is one address, so this is generous).
    pub max_per_address: usize,
    /// How long a connection may take to send a complete request header, and how long it may sit
    /// idle between requests.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_total: 8192,
            max_per_address: 512,
            idle_timeout: Duration::from_secs(20),
        }
    }
}

/// Descriptors kept out of the connection budget: the store and its WAL, the licenses
/// directory, the log, the vendor service's client, the listeners themselves.
pub const RESERVED_DESCRIPTORS: u64 = 64;

impl ConnectionLimits {
    /// The limits with `max_total` cut so that `ports` ports fit in `open_files` descriptors;
    /// `None` when nothing had to be cut.
    pub fn fitted(self, open_files: Option<u64>, ports: u64) -> (Self, Option<usize>) {
        let Some(open_files) = open_files else {
            return (self, None);
        };
        let room = open_files.saturating_sub(RESERVED_DESCRIPTORS) / ports.max(1);
        let room = usize::try_from(room).unwrap_or(usize::MAX).max(1);
        if room >= self.max_total {
            (self, None)
        } else {
            let fitted = Self {
                max_total: room,
                max_per_address: self.max_per_address.min(room),
                ..self
            };
            (fitted, Some(room))
        }
    }
}

/// Longest pause between two failing accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// The connections a port holds, by client address.
#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One held connection; counted until dropped.
#[derive(Debug)]
struct Slot {
    held: Arc<Mutex<Held>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock();
        held.total -= 1;
        if let Some(count) = held.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                held.by_address.remove(&self.address);
            }
        }
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    Port,
    Address,
}

fn take_slot(
    held: &Arc<Mutex<Held>>,
    address: IpAddr,
    limits: &ConnectionLimits,
) -> Result<Slot, Full> {
    let mut guard = held.lock();
    if guard.total >= limits.max_total {
        return Err(Full::Port);
    }
    let from_address = guard.by_address.entry(address).or_default();
    if *from_address >= limits.max_per_address {
        return Err(Full::Address);
    }
    *from_address += 1;
    guard.total += 1;
    Ok(Slot {
        held: held.clone(),
        address,
    })
}

/// Serves `router` on `listener` until `shutdown`, within `limits`; over TLS with `tls`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<Tls>>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let held = Arc::new(Mutex::new(Held::default()));
    let graceful = GracefulShutdown::new();
    let mut backoff = FIRST_BACKOFF;
    let mut warned = false;
    let lingering = Arc::new(Semaphore::new(MAX_LINGERING));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = FIRST_BACKOFF;
                warned = false;
                accepted
            }
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                if !warned {
                    tracing::warn!(
                        error = %e,
                        "cannot accept connections (out of descriptors or memory?); the \
                         connections already open are still served, new ones wait"
                    );
                    warned = true;
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        match (take_slot(&held, peer.ip(), &limits), &tls) {
            (Ok(slot), None) => {
                let watcher = graceful.watcher();
                let router = router.clone();
                tokio::spawn(async move {
                    serve_connection(stream, router, peer, limits, watcher).await;
                    drop(slot);
                });
            }
            (Ok(slot), Some(tls)) => {
                let acceptor = tls.acceptor();
                let watcher = graceful.watcher();
                let router = router.clone();
                tokio::spawn(async move {
                    // The handshake counts as reading the first request's header.
                    match tokio::time::timeout(limits.idle_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, router, peer, limits, watcher).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                    drop(slot);
                });
            }
            (Err(full), None) => {
                tracing::debug!(%peer, ?full, "connection refused: over the limit");
                turn_away(stream, full, &limits, &lingering);
            }
            // No plain-text answer on a TLS port: its client would not read it; closed.
            (Err(full), Some(_)) => {
                tracing::debug!(%peer, ?full, "TLS connection refused: over the limit");
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves one connection (plain or TLS) until it closes, or shutdown asks it to finish.
async fn serve_connection<S>(
    stream: S,
    router: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true)
        .serve_connection(
            TokioIo::new(WithJsonErrors::new(stream)),
            service(router, peer),
        );
    // Errors here are the client's (reset, timed out, malformed); hyper has answered what
    // could be answered.
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(error = %e, %peer, "connection ended");
    }
}

/// The router as hyper calls it, with the client's address for `ConnectInfo`.
fn service(
    router: Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    })
}

/// Errors of one connection that `accept` reports; the next accept is fine.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Refused connections whose answer is still draining; beyond that many, a refused connection
/// is closed at once (its client sees a reset instead of the answer).
const MAX_LINGERING: usize = 64;

/// How long a refused connection may take to read its answer.
const LINGER: Duration = Duration::from_secs(1);

/// Answers a refused connection with a short error and closes it. The answer is written without
/// waiting (a few hundred bytes always fit a fresh socket's buffer); then the request the client
/// already sent is read and discarded for up to [`LINGER`], since closing a socket with unread
/// data makes the kernel reset the connection, and a reset can destroy the answer before the
/// client reads it.
fn turn_away(stream: TcpStream, full: Full, limits: &ConnectionLimits, lingering: &Arc<Semaphore>) {
    let (status, message) = match full {
        Full::Port => (
            "503 Service Unavailable",
            format!(
                "the server holds as many connections as it takes ({}); try again shortly",
                limits.max_total
            ),
        ),
        Full::Address => (
            "429 Too Many Requests",
            format!(
                "this address holds as many connections as one address may ({}); close some or \
                 try again shortly",
                limits.max_per_address
            ),
        ),
    };
    let body = serde_json::to_string(&ApiError::new(ErrorCode::TooManyConnections, message))
        .unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    let Ok(permit) = lingering.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(LINGER, async {
            let _ = stream.shutdown().await;
            let mut sink = [0_u8; 4096];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_port_and_per_address_and_given_back() {
        let held = Arc::new(Mutex::new(Held::default()));
        let limits = ConnectionLimits {
            max_total: 3,
            max_per_address: 2,
            idle_timeout: Duration::from_secs(1),
        };
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let first = take_slot(&held, a, &limits).unwrap();
        let _second = take_slot(&held, a, &limits).unwrap();
        assert_eq!(take_slot(&held, a, &limits).unwrap_err(), Full::Address);
        let _third = take_slot(&held, b, &limits).unwrap();
        assert_eq!(take_slot(&held, b, &limits).unwrap_err(), Full::Port);
        drop(first);
        let _again = take_slot(&held, a, &limits).unwrap();
        assert_eq!(held.lock().total, 3);
    }

    #[test]
    fn the_budget_is_cut_to_fit_the_open_files_limit() {
        let limits = ConnectionLimits::default();
        assert_eq!(limits.fitted(None, 2), (limits, None));
        assert_eq!(limits.fitted(Some(1_048_576), 2), (limits, None));
        let (fitted, cut) = limits.fitted(Some(1024), 2);
        assert_eq!(cut, Some(480));
        assert_eq!((fitted.max_total, fitted.max_per_address), (480, 480));
    }
}
