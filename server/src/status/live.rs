//! Live push: `GET /status/events`, a Server-Sent Events stream of the status document, so the
//! status page and the admin Sessions screen show a grant as it happens instead of at their next
//! poll.
//!
//! Each event is `event: status`, `id:` the engine's count of changes, and as `data` the pool's
//! `data.json` without its sessions (cartridges and servers). A page shows the document as it
//! comes, and fetches its page of sessions again when the `id` moved. The first event goes out at
//! once, with `retry:` telling the browser how soon to reconnect after the stream broke; a page
//! whose stream fails goes back to polling until it reconnects.
//!
//! # What it costs
//!
//! - **Nobody listening: nothing.** The ticker task that waits on the engine is started by the
//!   first listener and stops when the last one goes.
//! - **Many listeners: one document per pool per tick.** One ticker wakes at the engine's
//!   changes (a `watch`, so a burst of grants is one wake-up), at most every [`SPACING`]: a
//!   change after a quiet spell goes out at once, and a busy server sends ten documents a second,
//!   not one per grant. Every stream of a pool sends the same document, built once per tick
//!   (`Hub::document`). Besides the engine's changes, the ticker wakes at a change of the
//!   licenses or pools, and every [`RESEND`] without either, for what changes by itself (a
//!   member's reachability, a license expiring).
//! - **Bounded.** At most [`MAX_LISTENERS`] streams at once; one more gets `503
//!   TOO_MANY_CONNECTIONS` and its page polls. A slow reader holds no queue: a stream sends the
//!   latest tick when its socket takes more, skipping those it missed. Streams end when the
//!   server stops, so a shutdown does not wait for them; a comment every [`KEEP_ALIVE`] keeps
//!   proxies from closing a quiet stream and finds dead clients.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Extension,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use models::ErrorCode;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::document::collect;
use crate::{
    app::AppState,
    http::{AppError, extract::Query},
    licensing::pool::Pool,
};

/// Streams open at once, from all clients. A browser page holds one.
pub const MAX_LISTENERS: usize = 1024;
/// The shortest time between two ticks: how long a change may wait behind the one before it.
pub const SPACING: Duration = Duration::from_millis(100);
/// A tick without a change after this long.
pub const RESEND: Duration = Duration::from_secs(5);
/// How soon a browser reconnects a broken stream (the `retry:` of the first event).
const RECONNECT: Duration = Duration::from_secs(3);
/// A comment this often on a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The streams' shared part: the ticker, the documents of the current tick, the count of
/// listeners. One per API port router.
#[derive(Debug, Default)]
pub struct Hub {
    /// The ticker's channel while it runs; `None` when nobody listens.
    ticker: Mutex<Option<Arc<watch::Sender<Tick>>>>,
    documents: Mutex<Documents>,
    /// Ticks numbered across restarts of the ticker, so a document is never taken for another's.
    ticks: AtomicU64,
    listeners: AtomicUsize,
}

/// The status documents of one tick: its number, and the documents by pool.
type Documents = (u64, HashMap<Option<String>, Arc<str>>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tick {
    number: u64,
    /// The engine's count of changes at the tick: the event's `id`.
    changes: u64,
}

impl Hub {
    /// Streams open now.
    pub fn listeners(&self) -> usize {
        self.listeners.load(Ordering::Relaxed)
    }

    /// A place among the listeners, if there is one left.
    fn admit(self: &Arc<Self>) -> Option<Listener> {
        self.listeners
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_LISTENERS).then_some(n + 1)
            })
            .ok()?;
        Some(Listener(Arc::clone(self)))
    }

    fn tick(&self, changes: u64) -> Tick {
        Tick {
            number: self.ticks.fetch_add(1, Ordering::Relaxed) + 1,
            changes,
        }
    }

    /// The ticks, starting the ticker if nobody listened.
    fn subscribe(self: &Arc<Self>, state: &AppState) -> watch::Receiver<Tick> {
        let mut ticker = self.ticker.lock();
        if let Some(sender) = ticker.as_ref() {
            return sender.subscribe();
        }
        let changes = state.engine.changes();
        let sender = Arc::new(watch::Sender::new(self.tick(*changes.borrow())));
        let ticks = sender.subscribe();
        *ticker = Some(Arc::clone(&sender));
        tokio::spawn(Arc::clone(self).run(
            sender,
            changes,
            state.inventory.changes(),
            state.stopping.clone(),
        ));
        ticks
    }

    /// The ticker: a tick at each change of the engine or of the licenses, at most every
    /// [`SPACING`], and every [`RESEND`] without one; until the last listener goes or the server
    /// stops.
    async fn run(
        self: Arc<Self>,
        sender: Arc<watch::Sender<Tick>>,
        mut changes: watch::Receiver<u64>,
        mut licenses: watch::Receiver<u64>,
        stopping: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                () = sender.closed() => {
                    if self.retire(&sender) {
                        return;
                    }
                    continue;
                }
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                changed = licenses.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(RESEND) => {}
            }
            licenses.mark_unchanged();
            sender.send_replace(self.tick(*changes.borrow_and_update()));
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(SPACING) => {}
            }
        }
    }

    /// Stops the ticker if nobody listens; under the lock [`Hub::subscribe`] takes, so a listener
    /// never subscribes to a ticker that has stopped.
    fn retire(&self, sender: &watch::Sender<Tick>) -> bool {
        let mut ticker = self.ticker.lock();
        if sender.receiver_count() > 0 {
            return false;
        }
        *ticker = None;
        *self.documents.lock() = (0, HashMap::new());
        true
    }

    /// The status document of `pool` at tick `number`: built by the first stream that asks,
    /// the same text for the others.
    fn document(&self, state: &AppState, pool: &Pool, number: u64) -> Arc<str> {
        let mut documents = self.documents.lock();
        if documents.0 != number {
            *documents = (number, HashMap::new());
        }
        let key = pool.name().map(str::to_owned);
        if let Some(document) = documents.1.get(&key) {
            return Arc::clone(document);
        }
        let document: Arc<str> = match serde_json::to_string(&collect(state, pool, false)) {
            Ok(text) => text.into(),
            // Unreachable (the document is plain data); an empty object is still valid JSON.
            Err(e) => {
                tracing::error!(error = %e, "cannot write the status document");
                "{}".into()
            }
        };
        documents.1.insert(key, Arc::clone(&document));
        document
    }
}

/// One open stream, counted while it lives.
#[derive(Debug)]
struct Listener(Arc<Hub>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.listeners.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `?pool=NAME`: a browser's `EventSource` cannot send the `X-Pool-ID` header.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The cartridge pool, as `X-Pool-ID` names it (which is read when this is absent); empty:
    /// the default pool. At most 64 characters, no control characters.
    #[param(max_length = 64)]
    pool: Option<String>,
}

/// The stream of status documents of the pool, as the server's state changes.
#[utoipa::path(
    get, path = "/status/events", tag = "status",
    params(EventsQuery),
    responses(
        (status = 200, description = "Server-Sent Events: `event: status`, `id:` the count of changes, `data:` the pool's data.json without sessions; the first at once, then at each change (at most ten a second) and every 5 s", content_type = "text/event-stream"),
        (status = 400, description = "INVALID_POOL_ID, INVALID_QUERY", body = models::ApiError),
        (status = 503, description = "TOO_MANY_CONNECTIONS: as many streams are open as the server keeps; poll data.json instead", body = models::ApiError),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    header_pool: Pool,
    Query(query): Query<EventsQuery>,
) -> Result<Response, AppError> {
    let pool = match query.pool {
        None => header_pool,
        Some(name) => Pool::parse(name.as_bytes()).map_err(|why| {
            AppError::bad_request(ErrorCode::InvalidPoolId, format!("invalid pool: {why}"))
        })?,
    };
    let Some(listener) = hub.admit() else {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TooManyConnections,
            format!(
                "{MAX_LISTENERS} event streams are open, as many as the server keeps; poll /status/data.json instead"
            ),
        ));
    };
    let ticks = hub.subscribe(&state);
    let stream = Stream {
        hub,
        state,
        pool,
        ticks,
        first: true,
        _listener: listener,
    };
    let events = futures_util::stream::unfold(stream, Stream::next);
    Ok((
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // nginx buffers answers by default: a stream must pass through as it is written.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)),
    )
        .into_response())
}

/// One stream's state between two events.
struct Stream {
    hub: Arc<Hub>,
    state: AppState,
    pool: Pool,
    ticks: watch::Receiver<Tick>,
    first: bool,
    _listener: Listener,
}

impl Stream {
    /// The next event: the current document at once for the first, then at the next tick;
    /// `None` (the end of the stream) when the server stops.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if !self.first {
            tokio::select! {
                () = self.state.stopping.cancelled() => return None,
                changed = self.ticks.changed() => changed.ok()?,
            }
        }
        let tick = *self.ticks.borrow_and_update();
        let document = self.hub.document(&self.state, &self.pool, tick.number);
        let mut event = Event::default()
            .event("status")
            .id(tick.changes.to_string())
            .data(&*document);
        if std::mem::take(&mut self.first) {
            event = event.retry(RECONNECT);
        }
        Some((Ok(event), self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_counted_and_capped() {
        let hub = Arc::new(Hub::default());
        let mut held: Vec<Listener> = (0..MAX_LISTENERS)
            .map(|_| hub.admit().expect("a place below the cap"))
            .collect();
        assert_eq!(hub.listeners(), MAX_LISTENERS);
        assert!(hub.admit().is_none(), "one more than the cap");
        held.pop();
        assert_eq!(hub.listeners(), MAX_LISTENERS - 1);
        let again = hub.admit().expect("a place freed by one that left");
        drop((again, held));
        assert_eq!(hub.listeners(), 0);
    }
}
