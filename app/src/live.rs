//! Live updates: a page listens to `GET /status/events` (Server-Sent Events) for its pool and
//! shows each status document as the server pushes it, a tenth of a second after a grant rather
//! than at the next poll.
//!
//! One `EventSource` per page. While its stream is open, [`Live::connected`] is true and the page
//! does not poll for what the stream brings. When the stream breaks (the server stopped, a proxy
//! cut it, the server refused it because too many pages listen), `connected` turns false, the
//! page polls as before, and [`Live::broke`] ticks so that it asks at once. The browser reconnects
//! by itself (after the server's `retry:`); a stream the browser gave up on (an answer that was
//! not a stream) is opened again after [`REOPEN`]. A hidden tab closes its stream, so the server
//! does nothing for it, and opens it again within [`CHECK`] of being shown.

use std::{cell::Cell, rc::Rc, time::Duration};

use leptos::prelude::*;
use models::StatusData;
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{EventSource, MessageEvent};

use crate::poll::{self, page_hidden};

/// How often a page checks that its stream should be open (the tab is shown) and is.
const CHECK: Duration = Duration::from_secs(1);
/// How long after the browser gave a stream up a page opens it again.
const REOPEN: Duration = Duration::from_secs(15);

/// What the stream brought last.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub document: StatusData,
    /// The server's count of changes at this document (the event's id): the sessions changed
    /// when it moved.
    pub changes: Option<u64>,
}

/// A page's stream: cheap to copy into closures.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// The stream is open and has sent its first document.
    pub connected: RwSignal<bool>,
    /// Set at each event, changed or not (the page shows when it last heard from the server).
    pub latest: RwSignal<Option<Pushed>>,
    /// Ticks when an open stream broke.
    pub broke: RwSignal<u64>,
}

impl Live {
    /// The server's count of changes, notifying only when it moves.
    pub fn changes(self) -> Memo<Option<u64>> {
        Memo::new(move |_| self.latest.with(|l| l.as_ref().and_then(|l| l.changes)))
    }

    fn receive(self, event: &MessageEvent) {
        let Some(text) = event.data().as_string() else {
            return;
        };
        let Ok(document) = serde_json::from_str::<StatusData>(&text) else {
            leptos::logging::warn!("the status stream sent a document this page cannot read");
            return;
        };
        if !self.connected.get_untracked() {
            self.connected.set(true);
        }
        self.latest.set(Some(Pushed {
            document,
            changes: event.last_event_id().parse().ok(),
        }));
    }

    fn lost(self) {
        if self.connected.get_untracked() {
            self.connected.set(false);
            self.broke.update(|n| *n += 1);
        }
    }
}

/// Listens to the status stream of `pool` (empty: the default pool) while the calling component
/// lives; a new pool opens a new stream.
pub fn connect(pool: Signal<String>) -> Live {
    let live = Live {
        connected: RwSignal::new(false),
        latest: RwSignal::new(None),
        broke: RwSignal::new(0),
    };
    // Dropped with the component: the stream closes.
    let stream = StoredValue::new_local(None::<Stream>);
    let check = move || {
        if page_hidden() {
            stream.set_value(None);
            live.lost();
        } else if !stream.with_value(|s| s.as_ref().is_some_and(Stream::worth_keeping)) {
            stream.set_value(None);
            stream.set_value(Stream::open(&pool.get_untracked(), live));
        }
    };
    Effect::new(move || {
        pool.track();
        stream.set_value(None);
        live.lost();
        check();
    });
    poll::every(CHECK, move || {
        check();
        async {}
    });
    live
}

/// An open `EventSource` and its handlers, closed when dropped.
struct Stream {
    source: EventSource,
    on_status: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
    /// When the browser gave the stream up (it does not reconnect by itself then).
    gave_up: Rc<Cell<Option<f64>>>,
}

impl Stream {
    fn open(pool: &str, live: Live) -> Option<Self> {
        let url = if pool.is_empty() {
            "/status/events".to_owned()
        } else {
            format!("/status/events?pool={}", js_sys::encode_uri_component(pool))
        };
        let source = EventSource::new(&url).ok()?;
        let on_status = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            live.receive(&event)
        });
        source
            .add_event_listener_with_callback("status", on_status.as_ref().unchecked_ref())
            .ok()?;
        let gave_up = Rc::new(Cell::new(None));
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new({
            let (source, gave_up) = (source.clone(), Rc::clone(&gave_up));
            move |_: web_sys::Event| {
                if source.ready_state() == EventSource::CLOSED {
                    gave_up.set(Some(js_sys::Date::now()));
                }
                live.lost();
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Some(Self {
            source,
            on_status,
            _on_error: on_error,
            gave_up,
        })
    }

    /// Open, reconnecting, or given up less than [`REOPEN`] ago.
    fn worth_keeping(&self) -> bool {
        self.gave_up
            .get()
            .is_none_or(|at| js_sys::Date::now() - at < REOPEN.as_secs_f64() * 1000.0)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.source.close();
        // No handler may run once its closure is gone.
        self.source.set_onerror(None);
        let _ = self
            .source
            .remove_event_listener_with_callback("status", self.on_status.as_ref().unchecked_ref());
    }
}

/// A "live" mark while the stream is open, so an administrator knows the page needs no reload.
#[component]
pub fn LiveMark(live: Live) -> impl IntoView {
    move || {
        live.connected.get().then(|| {
            view! {
                <span
                    class="badge ok live-mark"
                    title="Changes show here as they happen, pushed by the server"
                >
                    "live"
                </span>
            }
        })
    }
}
